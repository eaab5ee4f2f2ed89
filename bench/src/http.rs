//! A minimal HTTP/1.1 client: one keep-alive connection per worker and origin, no redirects
//! followed, no cookie store. Everything the scenarios need and nothing that costs CPU in the
//! load generator.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Every request gives up after this long; a run can never hang on one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where requests go: a loopback socket address plus the `Host` header and a path prefix.
#[derive(Debug, Clone)]
pub struct Origin {
    pub addr: SocketAddr,
    pub host: String,
    /// Path prefix of the base URL, without a trailing slash ("" for the root).
    pub prefix: String,
}

impl Origin {
    /// Parses an `http://` base URL whose host is a loopback address. Anything else is refused:
    /// the load generator only ever targets this machine.
    pub fn parse(base: &str) -> anyhow::Result<Arc<Origin>> {
        let url = url::Url::parse(base).with_context(|| format!("invalid URL {base}"))?;
        if url.scheme() != "http" {
            bail!("{base}: only http:// targets are supported");
        }
        let ip: IpAddr = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain("localhost")) => IpAddr::from([127, 0, 0, 1]),
            _ => bail!("{base}: the host must be a loopback address"),
        };
        if !ip.is_loopback() {
            bail!("{base}: the host must be a loopback address (127.0.0.0/8 or ::1)");
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| anyhow!("{base}: no port"))?;
        Ok(Arc::new(Origin {
            addr: SocketAddr::new(ip, port),
            host: url[url::Position::BeforeHost..url::Position::AfterPort].to_owned(),
            prefix: url.path().trim_end_matches('/').to_owned(),
        }))
    }

    /// The path (with the base URL's prefix) for a route.
    pub fn path(&self, route: &str) -> String {
        format!("{}{route}", self.prefix)
    }

    /// Whether an absolute URL points at this origin (same socket address).
    pub fn owns(&self, url: &url::Url) -> bool {
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain("localhost")) => IpAddr::from([127, 0, 0, 1]),
            _ => return false,
        };
        port == self.addr.port() && ip == self.addr.ip()
    }
}

/// A response with its body read in full.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn location(&self) -> anyhow::Result<&str> {
        self.headers
            .get(header::LOCATION)
            .ok_or_else(|| anyhow!("HTTP {} without Location", self.status))?
            .to_str()
            .context("Location is not ASCII")
    }

    /// A short description for error samples: status and the start of the body.
    pub fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(200).collect();
        format!("HTTP {}: {body}", self.status.as_u16())
    }

    pub fn expect(self, status: StatusCode) -> anyhow::Result<Response> {
        if self.status == status {
            Ok(self)
        } else {
            Err(anyhow!(
                "expected HTTP {}, got {}",
                status.as_u16(),
                self.describe()
            ))
        }
    }
}

/// One keep-alive HTTP/1.1 connection to one origin, reconnected when the server closes it.
pub struct Conn {
    origin: Arc<Origin>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(origin: Arc<Origin>) -> Conn {
        Conn {
            origin,
            sender: None,
        }
    }

    pub fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }

    /// Opens the connection now (so that connecting is not timed in the first request).
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream =
                tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(self.origin.addr))
                    .await
                    .map_err(|_| anyhow!("connect to {}: timed out", self.origin.addr))?
                    .with_context(|| format!("connect to {}", self.origin.addr))?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                // Ends when the server closes the connection or the sender is dropped.
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(())
    }

    /// Sends one request and reads the whole response. `path` is the path and query, already
    /// prefixed (see [`Origin::path`]).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> anyhow::Result<Response> {
        let result = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.send_inner(method, path, headers, body),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow!("{path}: no response within {REQUEST_TIMEOUT:?}")));
        if result.is_err() {
            // Whatever state the connection is in, start afresh.
            self.sender = None;
        }
        result
    }

    async fn send_inner(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> anyhow::Result<Response> {
        self.connect().await?;
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| anyhow!("not connected"))?;
        sender.ready().await.context("connection not ready")?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.origin.host.as_str());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// `Authorization: Basic …` for client_secret_basic (RFC 6749 §2.3.1: both parts form-encoded).
pub fn basic_auth(client_id: &str, client_secret: &str) -> HeaderValue {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", encode(client_id), encode(client_secret));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Basic"))
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> Bytes {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    Bytes::from(serializer.finish())
}

pub const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Reads one query parameter of a URL.
pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A per-flow cookie jar: names and values from `Set-Cookie`, sent back on every request of the
/// flow (all cookies are for the same loopback host; paths and expiry are not needed here).
#[derive(Debug, Default)]
pub struct CookieJar {
    cookies: Vec<(String, String)>,
}

impl CookieJar {
    pub fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(raw) = value.to_str() else { continue };
            let pair = raw.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let expired = value.is_empty()
                || value.eq_ignore_ascii_case("deleted")
                || raw.to_ascii_lowercase().contains("max-age=0");
            self.cookies.retain(|(n, _)| n != name);
            if !expired {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    pub fn header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let joined = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&joined).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_accepts_only_loopback() {
        let origin = Origin::parse("http://127.0.0.1:4444/base/").expect("loopback URL");
        assert_eq!(origin.addr.port(), 4444);
        assert_eq!(origin.host, "127.0.0.1:4444");
        assert_eq!(origin.path("/oauth2/token"), "/base/oauth2/token");
        assert!(Origin::parse("http://localhost:80").is_ok());
        assert!(Origin::parse("http://10.0.0.1:4444").is_err());
        assert!(Origin::parse("http://example.com").is_err());
        assert!(Origin::parse("https://127.0.0.1:4444").is_err());
    }

    #[test]
    fn basic_auth_form_encodes_both_parts() {
        let value = basic_auth("a b", "c:d");
        let encoded = value
            .to_str()
            .expect("ASCII")
            .strip_prefix("Basic ")
            .expect("Basic scheme");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(decoded, b"a+b:c%3Ad");
    }

    #[test]
    fn cookie_jar_keeps_latest_value() {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("b=2; HttpOnly"),
        );
        let mut jar = CookieJar::default();
        jar.store(&headers);
        let mut more = HeaderMap::new();
        more.append(header::SET_COOKIE, HeaderValue::from_static("a=3"));
        more.append(
            header::SET_COOKIE,
            HeaderValue::from_static("b=; Max-Age=0"),
        );
        jar.store(&more);
        assert_eq!(jar.header().expect("a cookie"), "a=3");
    }
}
