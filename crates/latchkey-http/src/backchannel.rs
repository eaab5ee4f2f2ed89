//! Back-channel logout delivery (OIDC Back-Channel Logout 1.0): the sender the core's
//! [`Engine::deliver_backchannel_logouts`] POSTs through, and the background task that drains
//! the outbox.
//!
//! An app's `backchannel_logout_uri` is registered by its developer and is treated as hostile:
//! only `https`, or `http` to a loopback address (local development); the name is resolved once
//! and only public addresses (or loopback) are connected to, through the client metadata
//! document fetcher's resolver; no redirects followed, no cookies, no proxy from the
//! environment, a 3 s connect and 5 s total timeout, and the answer's body is never read. A
//! delivery that fails is tried again later by the core's backoff.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::oauth::Engine;
use latchkey_core::oauth::logout::BackchannelSender;
use tokio::sync::Notify;

/// How many deliveries one run sends at most.
pub const BATCH: u32 = 50;

static WAKE: Notify = Notify::const_new();

/// Asks the background task to run now (a logout just queued deliveries).
pub fn wake() {
    WAKE.notify_one();
}

/// Sends logout tokens with reqwest.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    /// A sender that trusts the system's root certificates.
    pub fn new() -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) =
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if added == 0 {
            tracing::warn!(
                "no trusted root certificates found: https back-channel logouts will fail"
            );
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(crate::cimd::GuardedResolver::system(true)))
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .user_agent(concat!(
                "latchkey/",
                env!("CARGO_PKG_VERSION"),
                " back-channel logout"
            ))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }
}

/// Whether `uri` may be sent to: https, or http to a loopback address.
pub fn allowed(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    // An address written in the URI is not resolved: it is checked here.
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| crate::cimd::address_allowed(ip, true).is_err()) {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

#[async_trait]
impl BackchannelSender for HttpSender {
    async fn send(&self, uri: &str, logout_token: &str) -> Result<(), String> {
        if !allowed(uri) {
            return Err("the back-channel logout URI is not https (or http on loopback)".into());
        }
        let res = self
            .client
            .post(uri)
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", logout_token)])
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                }
            })?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", res.status().as_u16()))
        }
    }
}

/// Drains the outbox every `interval`, and at once when [`wake`] is called, until `stop`
/// resolves.
pub async fn run(
    engine: Engine,
    sender: Arc<dyn BackchannelSender>,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        loop {
            match engine
                .deliver_backchannel_logouts(sender.as_ref(), BATCH)
                .await
            {
                Ok(r) if r.delivered + r.failed == BATCH as usize => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "back-channel logout delivery failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = WAKE.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(allowed("https://app.example/logout"));
        assert!(allowed("http://127.0.0.1:8080/logout"));
        assert!(allowed("http://[::1]/logout"));
        assert!(allowed("http://localhost/logout"));
        assert!(!allowed("http://app.example/logout"));
        assert!(!allowed("http://10.0.0.1/logout"));
        assert!(!allowed("https://user:pw@app.example/logout"));
        assert!(!allowed("file:///etc/passwd"));
        assert!(!allowed("not a url"));
        // Private, link-local and metadata addresses are refused even over https.
        assert!(!allowed("https://10.0.0.1/logout"));
        assert!(!allowed("https://169.254.169.254/latest/meta-data"));
        assert!(!allowed("https://[fd00::1]/logout"));
        assert!(!allowed("https://[::ffff:192.168.1.1]/logout"));
        assert!(allowed("https://127.0.0.1:8443/logout"));
    }
}
