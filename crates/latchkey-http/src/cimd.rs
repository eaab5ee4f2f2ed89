//! The client metadata document fetcher: the I/O behind
//! [`MetadataDocumentFetcher`](latchkey_core::client::MetadataDocumentFetcher).
//!
//! A client_id URL is chosen by whoever sends the authorization request, so the fetch is a
//! server-side request to an attacker's URL (SSRF). The defences, each tested in
//! `tests/it/cimd.rs`:
//! - https only, on a URL that passed [`parse_document_url`];
//! - the host is resolved once, by our resolver, which refuses the whole fetch if any address is
//!   not public ([`classify`]); the connection goes to exactly those addresses; an IP-literal
//!   host is checked directly; no proxy, no connection reuse;
//! - no redirects, a total timeout, a streamed body cap, `200` and a JSON content type only;
//! - a per-host rate limit on network fetches, and a bounded cache that honours
//!   `Cache-Control` within bounds. Only valid documents are cached.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::{DefaultKeyedRateLimiter, Quota};
use latchkey_core::client::{
    CimdError, MetadataDocument, MetadataDocumentFetcher, parse_document, parse_document_url,
};
use latchkey_core::config::Config;
use url::{Host, Url};

/// What an IP address is, for the fetcher: only [`AddressClass::Public`] may be fetched (and
/// [`AddressClass::Loopback`] when loopback is allowed, for development).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    /// RFC 1918, IPv6 unique local (fc00::/7) and the deprecated site-local (fec0::/10).
    Private,
    /// 169.254.0.0/16 (cloud metadata services live here), fe80::/10.
    LinkLocal,
    Multicast,
    /// 0.0.0.0/8, `::`.
    Unspecified,
    /// 255.255.255.255.
    Broadcast,
    /// 100.64.0.0/10 (carrier-grade NAT, RFC 6598).
    SharedAddressSpace,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32.
    Documentation,
    /// 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// Everything else that is not global unicast: 192.0.0.0/24, 240.0.0.0/4, IPv6 outside
    /// 2000::/3, protocol assignments (2001::/23), 6to4, IPv4-compatible IPv6, discard-only.
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Multicast => "multicast",
            Self::Unspecified => "unspecified",
            Self::Broadcast => "broadcast",
            Self::SharedAddressSpace => "shared address space",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        }
    }
}

/// Classifies an address. IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`)
/// addresses are classified by the IPv4 address they carry; an IPv4-compatible one (`::a.b.c.d`,
/// deprecated) by its IPv4 address if that is not public, else as reserved.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (0, ..) => AddressClass::Unspecified,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedAddressSpace,
        (127, ..) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (198, 18..=19, _) => AddressClass::Benchmarking,
        (224..=239, ..) => AddressClass::Multicast,
        // IETF protocol assignments, the 6to4 relay anycast (deprecated), 240.0.0.0/4.
        (192, 0, 0) | (192, 88, 99) | (240..=255, ..) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-compatible (::/96, deprecated).
        [0, 0, 0, 0, 0, 0, ..] => match classify_v4(embedded()) {
            AddressClass::Public => AddressClass::Reserved,
            class => class,
        },
        // NAT64 well-known prefix: as the IPv4 address it reaches.
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => classify_v4(embedded()),
        [0xff00..=0xffff, ..] => AddressClass::Multicast,
        [0xfe80..=0xfebf, ..] => AddressClass::LinkLocal,
        [0xfc00..=0xfdff | 0xfec0..=0xfeff, ..] => AddressClass::Private,
        [0x2001, 0x0db8, ..] => AddressClass::Documentation,
        [0x2001, 0x0002, 0, ..] => AddressClass::Benchmarking,
        // Protocol assignments (Teredo included), 6to4.
        [0x2001, 0x0000..=0x01ff, ..] | [0x2002, ..] => AddressClass::Reserved,
        [0x2000..=0x3fff, ..] => AddressClass::Public,
        _ => AddressClass::Reserved,
    }
}

/// Whether the fetcher may connect to `ip`: public addresses, and loopback when
/// `allow_loopback` — nothing else.
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> Result<(), AddressClass> {
    match classify(ip) {
        AddressClass::Public => Ok(()),
        AddressClass::Loopback if allow_loopback => Ok(()),
        class => Err(class),
    }
}

/// Resolves a host name to addresses. [`SystemLookup`] in production; tests inject a
/// [`StaticLookup`] so a name can point anywhere without real DNS.
#[async_trait]
pub trait HostLookup: Send + Sync + fmt::Debug + 'static {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

#[async_trait]
impl HostLookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

/// A fixed table of names (lower case) to addresses; any other name does not resolve.
#[derive(Debug, Default, Clone)]
pub struct StaticLookup(pub HashMap<String, Vec<IpAddr>>);

#[async_trait]
impl HostLookup for StaticLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
    }
}

/// The fetcher's settings. [`CimdOptions::default`] is the production profile.
#[derive(Debug, Clone)]
pub struct CimdOptions {
    /// Allow loopback addresses (development and tests only).
    pub allow_loopback: bool,
    /// The whole fetch: resolution, connection, TLS, headers and body.
    pub timeout: Duration,
    /// The largest document accepted; the body is read no further.
    pub max_bytes: usize,
    /// How many documents the cache holds.
    pub cache_entries: usize,
    /// How long a document is cached when the response does not say (`Cache-Control: max-age`).
    pub default_ttl: Duration,
    /// The shortest and longest a cacheable document is kept, whatever `max-age` says.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// Network fetches per minute per host (cache hits are free).
    pub per_host_per_minute: u32,
    /// Certificates (DER) trusted in addition to the system's roots and `SSL_CERT_FILE`.
    pub extra_root_certs_der: Vec<Vec<u8>>,
    /// How host names are resolved.
    pub lookup: Arc<dyn HostLookup>,
}

impl Default for CimdOptions {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            timeout: Duration::from_secs(5),
            max_bytes: 5 * 1024,
            cache_entries: 1000,
            default_ttl: Duration::from_secs(5 * 60),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(24 * 60 * 60),
            per_host_per_minute: 10,
            extra_root_certs_der: Vec::new(),
            lookup: Arc::new(SystemLookup),
        }
    }
}

/// The fetcher could not be built (a bad extra root certificate, a TLS or client setup error).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the client metadata document fetcher: {0}")]
pub struct CimdSetupError(String);

/// How long a response may be cached: `None` for `no-store` or `no-cache` (we do not
/// revalidate), else `max-age` (or `default_ttl` without one) clamped to `[min_ttl, max_ttl]`.
/// `Expires` is not consulted.
pub fn cache_ttl(cache_control: &[&str], options: &CimdOptions) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control.iter().flat_map(|v| v.split(',')) {
        let directive = directive.trim().to_ascii_lowercase();
        match directive.split_once('=') {
            None if directive == "no-store" || directive == "no-cache" => return None,
            Some((name, value)) if name.trim() == "max-age" => {
                // An unparsable max-age is stale (RFC 9111 §4.2.1): the shortest we keep.
                max_age = Some(value.trim().trim_matches('"').parse::<u64>().unwrap_or(0));
            }
            _ => {}
        }
    }
    let ttl = max_age.map_or(options.default_ttl, Duration::from_secs);
    Some(ttl.clamp(options.min_ttl, options.max_ttl.max(options.min_ttl)))
}

struct CacheEntry {
    doc: Arc<MetadataDocument>,
    expires: Instant,
}

/// Fetches client metadata documents safely; see the module documentation.
pub struct CimdFetcher {
    client: reqwest::Client,
    options: CimdOptions,
    limiter: DefaultKeyedRateLimiter<String>,
    cache: Mutex<HashMap<String, CacheEntry>>,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for CimdFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CimdFetcher")
            .field("allow_loopback", &self.options.allow_loopback)
            .finish_non_exhaustive()
    }
}

/// The resolver reqwest uses: resolves once, refuses if any address is forbidden. The
/// back-channel logout sender uses it too.
pub(crate) struct GuardedResolver {
    lookup: Arc<dyn HostLookup>,
    allow_loopback: bool,
}

impl GuardedResolver {
    /// A resolver over the system's, refusing every address but public ones (and loopback when
    /// `allow_loopback`).
    pub(crate) fn system(allow_loopback: bool) -> Self {
        Self {
            lookup: Arc::new(SystemLookup),
            allow_loopback,
        }
    }
}

/// Why the resolver refused; found again in the reqwest error's source chain.
#[derive(Debug, thiserror::Error)]
enum ResolveRefusal {
    #[error("forbidden address: {0}")]
    Forbidden(&'static str),
    #[error("no address")]
    Unresolvable,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = Arc::clone(&self.lookup);
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = lookup
                .lookup(&host)
                .await
                .map_err(|_| ResolveRefusal::Unresolvable)?;
            if addrs.is_empty() {
                return Err(ResolveRefusal::Unresolvable.into());
            }
            for ip in &addrs {
                if let Err(class) = address_allowed(*ip, allow_loopback) {
                    return Err(ResolveRefusal::Forbidden(class.as_str()).into());
                }
            }
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

impl CimdFetcher {
    /// The fetcher of a configuration (loopback as configured, the rest the production
    /// profile), or `None` when metadata documents are disabled.
    pub fn from_config(config: &Config) -> Result<Option<Self>, CimdSetupError> {
        let section = &config.oauth2.client_id_metadata_documents;
        if !section.enabled {
            return Ok(None);
        }
        Self::new(CimdOptions {
            allow_loopback: section.allow_loopback,
            ..CimdOptions::default()
        })
        .map(Some)
    }

    pub fn new(options: CimdOptions) -> Result<Self, CimdSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system root certificate could not be loaded");
        }
        let (added, _) = roots.add_parsable_certificates(native.certs);
        for der in &options.extra_root_certs_der {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| CimdSetupError(format!("extra root certificate: {e}")))?;
        }
        if added == 0 && options.extra_root_certs_der.is_empty() {
            tracing::warn!(
                "no trusted root certificates found: client metadata documents cannot be fetched"
            );
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CimdSetupError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .pool_max_idle_per_host(0)
            .dns_resolver(Arc::new(GuardedResolver {
                lookup: Arc::clone(&options.lookup),
                allow_loopback: options.allow_loopback,
            }))
            .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CimdSetupError(e.to_string()))?;
        let per_minute =
            NonZeroU32::new(options.per_host_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            client,
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            options,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// How many documents are cached (expired ones included until evicted).
    pub fn cached_len(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }

    fn cached(&self, key: &str) -> Option<Arc<MetadataDocument>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(key)
            .filter(|e| e.expires > Instant::now())
            .map(|e| Arc::clone(&e.doc))
    }

    fn store(&self, key: &str, doc: Arc<MetadataDocument>, ttl: Duration) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        let now = Instant::now();
        if cache.len() >= self.options.cache_entries && !cache.contains_key(key) {
            cache.retain(|_, e| e.expires > now);
            while cache.len() >= self.options.cache_entries.max(1) {
                let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        cache.insert(
            key.to_owned(),
            CacheEntry {
                doc,
                expires: now + ttl,
            },
        );
    }

    fn check_address_literal(&self, url: &Url) -> Result<(), CimdError> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(CimdError::UrlMalformed),
        };
        address_allowed(ip, self.options.allow_loopback)
            .map_err(|class| CimdError::ForbiddenAddress(class.as_str().to_owned()))
    }

    fn rate_limit(&self, host: &str) -> Result<(), CimdError> {
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&host.to_owned())
            .map_err(|_| CimdError::RateLimited)
    }

    /// One network fetch, with every check; the document and how long it may be cached.
    async fn fetch_network(
        &self,
        url: &Url,
    ) -> Result<(MetadataDocument, Option<Duration>), CimdError> {
        let response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Redirect);
        }
        if status != reqwest::StatusCode::OK {
            return Err(CimdError::Status(status.as_u16()));
        }
        let headers = response.headers();
        let json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_media_type);
        if !json {
            return Err(CimdError::ContentType);
        }
        let cache_control: Vec<&str> = headers
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let ttl = cache_ttl(&cache_control, &self.options);
        let max = self.options.max_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(CimdError::TooLarge(max));
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e))? {
            if body.len() + chunk.len() > max {
                return Err(CimdError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((parse_document(url, &body)?, ttl))
    }
}

/// `application/json`, or any `application/…+json`, parameters aside.
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The refusal hidden in a transport error: our resolver's, a timeout, or the rest.
fn transport_error(e: &reqwest::Error) -> CimdError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refusal) = err.downcast_ref::<ResolveRefusal>() {
            return match refusal {
                ResolveRefusal::Forbidden(class) => {
                    CimdError::ForbiddenAddress((*class).to_owned())
                }
                ResolveRefusal::Unresolvable => CimdError::Unresolvable,
            };
        }
        source = err.source();
    }
    if e.is_timeout() {
        CimdError::Timeout
    } else {
        CimdError::Unreachable
    }
}

#[async_trait]
impl MetadataDocumentFetcher for CimdFetcher {
    async fn fetch(&self, url: &Url) -> Result<Arc<MetadataDocument>, CimdError> {
        // The caller should have parsed it already; a second look is cheap.
        let url = parse_document_url(url.as_str())?;
        let key = url.as_str();
        if let Some(doc) = self.cached(key) {
            return Ok(doc);
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        let result = async {
            self.check_address_literal(&url)?;
            // Concurrent fetches of one URL: one goes to the network, the others wait for it
            // and then find the cache.
            let gate = {
                let mut inflight = self.inflight.lock().map_err(|_| CimdError::Unreachable)?;
                Arc::clone(inflight.entry(key.to_owned()).or_default())
            };
            let result = {
                let _turn = gate.lock().await;
                match self.cached(key) {
                    Some(doc) => Ok(doc),
                    None => self.fetch_fresh(&url, &host).await,
                }
            };
            if let Ok(mut inflight) = self.inflight.lock()
                && Arc::strong_count(&gate) <= 2
            {
                inflight.remove(key);
            }
            result
        }
        .await;
        match &result {
            Ok(_) => tracing::debug!(host, "client metadata document ready"),
            Err(e) => tracing::info!(host, reason = %e, "client metadata document refused"),
        }
        result
    }
}

impl CimdFetcher {
    async fn fetch_fresh(&self, url: &Url, host: &str) -> Result<Arc<MetadataDocument>, CimdError> {
        self.rate_limit(host)?;
        tracing::debug!(host, "fetching a client metadata document");
        let (doc, ttl) = tokio::time::timeout(self.options.timeout, self.fetch_network(url))
            .await
            .map_err(|_| CimdError::Timeout)??;
        let doc = Arc::new(doc);
        if let Some(ttl) = ttl {
            self.store(url.as_str(), Arc::clone(&doc), ttl);
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().expect("valid in the test"))
    }

    #[test]
    fn ipv4_classes() {
        use AddressClass::*;
        for (ip, want) in [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("93.184.216.34", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("192.167.255.255", Public),
            ("169.253.255.255", Public),
            ("223.255.255.255", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Broadcast),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_classes() {
        use AddressClass::*;
        for (ip, want) in [
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001:80b::200e", Public),
            ("2001:4860:4860::8888", Public),
            ("3fff:ffff::1", Public),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("2001:db8::1", Documentation),
            ("2001:2::1", Benchmarking),
            ("2001::1", Reserved),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved),
            ("2002:7f00:1::1", Reserved),
            ("100::1", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("4000::1", Reserved),
            ("1::1", Reserved),
            // IPv4-mapped: as the IPv4 address.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:224.0.0.1", Multicast),
            ("::ffff:255.255.255.255", Broadcast),
            ("::ffff:8.8.8.8", Public),
            // IPv4-compatible: the IPv4 class if forbidden, else reserved.
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("::169.254.169.254", LinkLocal),
            ("::8.8.8.8", Reserved),
            // NAT64: as the IPv4 address it reaches.
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::10.0.0.1", Private),
            ("64:ff9b::8.8.8.8", Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn allow_loopback_allows_loopback_only() {
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().expect("valid in the test");
            assert_eq!(address_allowed(ip, false), Err(AddressClass::Loopback));
            assert_eq!(address_allowed(ip, true), Ok(()));
        }
        for ip in [
            "10.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:192.168.0.1",
        ] {
            let ip: IpAddr = ip.parse().expect("valid in the test");
            assert!(address_allowed(ip, true).is_err(), "{ip}");
        }
        assert_eq!(
            address_allowed("8.8.8.8".parse().expect("valid in the test"), false),
            Ok(())
        );
    }

    #[test]
    fn cache_lifetimes_follow_cache_control_within_bounds() {
        let o = CimdOptions::default();
        let secs = Duration::from_secs;
        assert_eq!(cache_ttl(&[], &o), Some(secs(300)));
        assert_eq!(cache_ttl(&["public, max-age=3600"], &o), Some(secs(3600)));
        assert_eq!(cache_ttl(&["max-age=\"600\""], &o), Some(secs(600)));
        assert_eq!(cache_ttl(&["max-age=1"], &o), Some(secs(30)));
        assert_eq!(cache_ttl(&["max-age=0"], &o), Some(secs(30)));
        assert_eq!(cache_ttl(&["max-age=x"], &o), Some(secs(30)));
        assert_eq!(cache_ttl(&["Max-Age=999999999"], &o), Some(secs(86400)));
        assert_eq!(cache_ttl(&["no-store"], &o), None);
        assert_eq!(cache_ttl(&["max-age=60", "No-Cache"], &o), None);
        assert_eq!(cache_ttl(&["private, no-store, max-age=60"], &o), None);
        assert_eq!(cache_ttl(&["no-cache=\"set-cookie\""], &o), Some(secs(300)));
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/oauth-client-metadata+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "text/html",
            "text/json",
            "application/jsonp",
            "application/json-seq",
            "",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }
}
