//! The client metadata document fetcher against a real HTTPS server on loopback (its own test
//! CA), with `allow_loopback` where the server must be reached: every SSRF refusal, every
//! response refusal, the cache, coalescing, the per-host limit, and the trust store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode, Uri, header};
use latchkey_core::client::{CimdError, MetadataDocumentFetcher, parse_document_url};
use latchkey_http::cimd::{CimdFetcher, CimdOptions, StaticLookup};
use url::Url;

type Hits = Arc<Mutex<HashMap<String, usize>>>;

/// An HTTPS document server on 127.0.0.1 with a certificate for `localhost` and `127.0.0.1`
/// issued by a test CA, counting the requests to each path.
struct DocServer {
    port: u16,
    hits: Hits,
    ca_der: Vec<u8>,
    ca_pem: String,
}

impl DocServer {
    async fn start() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Latchkey CIMD test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params")
                .signed_by(&leaf_key, &ca)
                .expect("leaf");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("tls config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits: Hits = Arc::default();
        let router = axum::Router::new()
            .fallback(serve_document)
            .with_state(Arc::clone(&hits));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Self {
            port,
            hits,
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
        }
    }

    fn url(&self, host: &str, path: &str) -> Url {
        parse_document_url(&format!("https://{host}:{}{path}", self.port)).expect("a good URL")
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("hits")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// A fetcher that trusts the test CA, reaches loopback, and resolves `localhost` (only) to
    /// 127.0.0.1.
    fn fetcher(&self, tweak: impl FnOnce(&mut CimdOptions)) -> CimdFetcher {
        let mut options = CimdOptions {
            allow_loopback: true,
            extra_root_certs_der: vec![self.ca_der.clone()],
            lookup: Arc::new(lookup(&[("localhost", "127.0.0.1")])),
            ..CimdOptions::default()
        };
        tweak(&mut options);
        CimdFetcher::new(options).expect("fetcher")
    }
}

fn lookup(entries: &[(&str, &str)]) -> StaticLookup {
    let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for (name, ip) in entries {
        map.entry((*name).to_owned())
            .or_default()
            .push(ip.parse().expect("ip"));
    }
    StaticLookup(map)
}

fn document(client_id: &str) -> String {
    serde_json::json!({
        "client_id": client_id,
        "client_name": "Loopback Test App",
        "redirect_uris": ["https://app.example/callback"],
    })
    .to_string()
}

fn json_response(body: impl Into<Body>) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("response")
}

/// Paths: `/doc…` a good document (its client_id from the Host header), `/nostore` one with
/// `Cache-Control: no-store`, `/redirect` a 302 to `/doc`, `/slow` a body that never ends,
/// `/big` and `/big-stream` 10 KiB with and without a length, `/mismatch` another client_id,
/// `/broken` bad JSON, `/html` the wrong type, `/secret` a shared secret, anything else 404.
async fn serve_document(State(hits): State<Hits>, uri: Uri, headers: HeaderMap) -> Response<Body> {
    let path = uri.path().to_owned();
    *hits.lock().expect("hits").entry(path.clone()).or_default() += 1;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let own_id = format!("https://{host}{path}");
    match path.as_str() {
        p if p.starts_with("/doc") => json_response(document(&own_id)),
        "/nostore" => {
            let mut res = json_response(document(&own_id));
            res.headers_mut()
                .insert(header::CACHE_CONTROL, "no-store".parse().expect("value"));
            res
        }
        "/redirect" => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, "/doc")
            .body(Body::empty())
            .expect("response"),
        "/slow" => {
            let first = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from_static(
                b"{\"client_id\":",
            ))]);
            let stalled = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            json_response(Body::from_stream(stalled))
        }
        "/big" => json_response(format!(
            "{{\"client_id\":\"{own_id}\",\"pad\":\"{}\"}}",
            "x".repeat(10 * 1024)
        )),
        "/big-stream" => {
            let chunks = (0..10).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b' '; 1024])));
            json_response(Body::from_stream(futures_util::stream::iter(chunks)))
        }
        "/mismatch" => json_response(document(&format!("https://{host}/other.json"))),
        "/broken" => json_response("{\"client_id\":"),
        "/html" => Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .body(Body::from(document(&own_id)))
            .expect("response"),
        "/secret" => json_response(
            serde_json::json!({
                "client_id": own_id,
                "client_name": "Secretive",
                "redirect_uris": ["https://app.example/callback"],
                "client_secret": "hunter2",
            })
            .to_string(),
        ),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .expect("response"),
    }
}

#[tokio::test]
async fn a_good_document_is_fetched_by_name_and_by_address() {
    let server = DocServer::start().await;
    let fetcher = server.fetcher(|_| {});
    for host in ["localhost", "127.0.0.1"] {
        let url = server.url(host, "/doc.json");
        let doc = fetcher.fetch(&url).await.expect("the document");
        assert_eq!(doc.client_id, url.as_str());
        assert_eq!(doc.client_name, "Loopback Test App");
    }
    assert_eq!(server.hits("/doc.json"), 2);
}

#[tokio::test]
async fn every_forbidden_address_literal_is_refused_without_a_connection() {
    let fetcher = CimdFetcher::new(CimdOptions::default()).expect("fetcher");
    let loopback_ok = CimdFetcher::new(CimdOptions {
        allow_loopback: true,
        ..CimdOptions::default()
    })
    .expect("fetcher");
    for (host, class) in [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[fc00::1]", "private"),
        ("[fd00:ec2::254]", "private"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("224.0.0.1", "multicast"),
        ("[ff02::1]", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("100.64.0.1", "shared address space"),
        ("192.0.2.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("240.0.0.1", "reserved"),
        ("[64:ff9b::a00:1]", "private"),
    ] {
        // The URL as `url` writes it (IPv6 literals are canonicalised), so only the address
        // rule can refuse it.
        let raw = Url::parse(&format!("https://{host}/client.json")).expect("url");
        let url = parse_document_url(raw.as_str()).expect("a well-formed URL");
        assert_eq!(
            fetcher.fetch(&url).await,
            Err(CimdError::ForbiddenAddress(class.to_owned())),
            "{host}"
        );
        let with_loopback = loopback_ok.fetch(&url).await;
        if class == "loopback" {
            // Allowed, and nothing listens on port 443 there (or it is not our server).
            assert!(
                !matches!(with_loopback, Err(CimdError::ForbiddenAddress(_)) | Ok(_)),
                "{host}: {with_loopback:?}"
            );
        } else {
            assert_eq!(
                with_loopback,
                Err(CimdError::ForbiddenAddress(class.to_owned())),
                "{host} with allow_loopback"
            );
        }
    }
    assert_eq!(fetcher.cached_len(), 0);
}

#[tokio::test]
async fn a_name_resolving_to_a_forbidden_address_is_refused() {
    let server = DocServer::start().await;
    let table = lookup(&[
        ("evil.test", "127.0.0.1"),
        ("intranet.test", "10.0.0.1"),
        ("metadata.test", "169.254.169.254"),
        ("mapped.test", "::ffff:127.0.0.1"),
        // One bad address among good ones refuses the whole fetch.
        ("mixed.test", "93.184.216.34"),
        ("mixed.test", "192.168.1.1"),
    ]);
    let strict = server.fetcher(|o| {
        o.allow_loopback = false;
        o.lookup = Arc::new(table.clone());
    });
    let dev = server.fetcher(|o| o.lookup = Arc::new(table.clone()));
    for (host, class, also_with_loopback) in [
        ("evil.test", "loopback", false),
        ("mapped.test", "loopback", false),
        ("intranet.test", "private", true),
        ("metadata.test", "link-local", true),
        ("mixed.test", "private", true),
    ] {
        let url = server.url(host, "/doc.json");
        let want = Err(CimdError::ForbiddenAddress(class.to_owned()));
        assert_eq!(strict.fetch(&url).await, want, "{host}");
        if also_with_loopback {
            assert_eq!(dev.fetch(&url).await, want, "{host} with allow_loopback");
        }
    }
    // `localhost` through the real resolver is loopback too.
    let system = CimdFetcher::new(CimdOptions::default()).expect("fetcher");
    assert_eq!(
        system.fetch(&server.url("localhost", "/doc.json")).await,
        Err(CimdError::ForbiddenAddress("loopback".to_owned()))
    );
    assert_eq!(
        strict.fetch(&server.url("nowhere.test", "/doc.json")).await,
        Err(CimdError::Unresolvable)
    );
    // The server was never reached, except by the one allowed loopback name below.
    assert_eq!(server.hits("/doc.json"), 0);
    assert!(
        dev.fetch(&server.url("evil.test", "/doc.json"))
            .await
            .is_err()
    );
    assert_eq!(
        server.hits("/doc.json"),
        0,
        "evil.test is not in the certificate"
    );
}

#[tokio::test]
async fn bad_urls_are_refused_before_any_fetch() {
    let server = DocServer::start().await;
    let fetcher = server.fetcher(|_| {});
    let port = server.port;
    for (raw, want) in [
        (
            format!("http://127.0.0.1:{port}/doc"),
            CimdError::UrlNotHttps,
        ),
        (
            format!("https://user:pw@127.0.0.1:{port}/doc"),
            CimdError::UrlCredentials,
        ),
        (
            format!("https://127.0.0.1:{port}/doc#x"),
            CimdError::UrlFragment,
        ),
        (format!("https://127.0.0.1:{port}/"), CimdError::UrlNoPath),
    ] {
        let url = Url::parse(&raw).expect("url");
        assert_eq!(fetcher.fetch(&url).await, Err(want.clone()), "{raw}");
        assert_eq!(parse_document_url(&raw), Err(want), "{raw}");
    }
    for raw in [
        format!("https://127.0.0.1:{port}/a/../doc"),
        format!("https://127.0.0.1:{port}/./doc"),
    ] {
        assert_eq!(
            parse_document_url(&raw),
            Err(CimdError::UrlDotSegment),
            "{raw}"
        );
    }
    assert_eq!(server.hits("/doc"), 0);
}

#[tokio::test]
async fn bad_responses_are_refused_and_not_cached() {
    let server = DocServer::start().await;
    let fetcher = server.fetcher(|o| {
        o.timeout = Duration::from_millis(500);
        o.per_host_per_minute = 100;
    });
    for (path, want) in [
        ("/redirect", CimdError::Redirect),
        ("/slow", CimdError::Timeout),
        ("/big", CimdError::TooLarge(5 * 1024)),
        ("/big-stream", CimdError::TooLarge(5 * 1024)),
        ("/mismatch", CimdError::ClientIdMismatch),
        ("/broken", CimdError::NotJson),
        ("/html", CimdError::ContentType),
        (
            "/secret",
            CimdError::SecretRefused("client_secret".to_owned()),
        ),
        ("/missing", CimdError::Status(404)),
    ] {
        let url = server.url("localhost", path);
        assert_eq!(fetcher.fetch(&url).await, Err(want.clone()), "{path}");
        // Each refusal changes nothing: asked again, the server is asked again.
        assert_eq!(fetcher.fetch(&url).await, Err(want), "{path} again");
        assert_eq!(server.hits(path), 2, "{path}");
    }
    assert_eq!(fetcher.cached_len(), 0);
    // The redirect was not followed.
    assert_eq!(server.hits("/doc"), 0);
}

#[tokio::test]
async fn documents_are_cached_unless_the_server_says_no_store() {
    let server = DocServer::start().await;
    let fetcher = server.fetcher(|_| {});
    let cached = server.url("localhost", "/doc-cached");
    let first = fetcher.fetch(&cached).await.expect("document");
    let second = fetcher.fetch(&cached).await.expect("document");
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(server.hits("/doc-cached"), 1);

    let fresh = server.url("localhost", "/nostore");
    fetcher.fetch(&fresh).await.expect("document");
    fetcher.fetch(&fresh).await.expect("document");
    assert_eq!(server.hits("/nostore"), 2);
    assert_eq!(fetcher.cached_len(), 1);

    // Concurrent first fetches of one URL are one request.
    let fetcher = Arc::new(fetcher);
    let together = server.url("localhost", "/doc-together");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (fetcher, url) = (Arc::clone(&fetcher), together.clone());
            tokio::spawn(async move { fetcher.fetch(&url).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("document");
    }
    assert_eq!(server.hits("/doc-together"), 1);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let server = DocServer::start().await;
    let fetcher = server.fetcher(|o| {
        o.cache_entries = 3;
        o.per_host_per_minute = 100;
    });
    for i in 0..10 {
        fetcher
            .fetch(&server.url("localhost", &format!("/doc-{i}")))
            .await
            .expect("document");
        assert!(fetcher.cached_len() <= 3);
    }
    assert_eq!(fetcher.cached_len(), 3);
}

#[tokio::test]
async fn network_fetches_are_limited_per_host() {
    let server = DocServer::start().await;
    let fetcher = server.fetcher(|o| o.per_host_per_minute = 2);
    let url = server.url("localhost", "/nostore");
    fetcher.fetch(&url).await.expect("first");
    fetcher.fetch(&url).await.expect("second");
    let refused = fetcher.fetch(&url).await;
    assert_eq!(refused, Err(CimdError::RateLimited));
    assert_eq!(
        refused.expect_err("limited").error_code(),
        "temporarily_unavailable"
    );
    assert_eq!(server.hits("/nostore"), 2);
    // Another host has its own budget.
    fetcher
        .fetch(&server.url("127.0.0.1", "/nostore"))
        .await
        .expect("another host");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = DocServer::start().await;
    let fetcher = server.fetcher(|o| o.extra_root_certs_der.clear());
    assert_eq!(
        fetcher.fetch(&server.url("localhost", "/doc")).await,
        Err(CimdError::Unreachable)
    );
    assert_eq!(server.hits("/doc"), 0);
}

const CHILD_URL: &str = "LATCHKEY_TEST_CIMD_URL";

/// `SSL_CERT_FILE` is honoured: a child process of this test binary, with the variable set to
/// the test CA and no extra roots, fetches the document (the environment is per process, so
/// the variable is set for the child only).
#[tokio::test]
async fn ssl_cert_file_is_trusted() {
    let server = DocServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &server.ca_pem).expect("write");
    let url = server.url("127.0.0.1", "/doc-child");
    let exe = std::env::current_exe().expect("exe");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "cimd::ssl_cert_file_child",
                "--ignored",
                "--nocapture",
            ])
            .env("SSL_CERT_FILE", &ca_file)
            .env(CHILD_URL, url.as_str())
            .output()
            .expect("child")
    })
    .await
    .expect("join");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(server.hits("/doc-child"), 1);
}

#[tokio::test]
#[ignore = "run by ssl_cert_file_is_trusted in a child process"]
async fn ssl_cert_file_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let fetcher = CimdFetcher::new(CimdOptions {
        allow_loopback: true,
        ..CimdOptions::default()
    })
    .expect("fetcher");
    let url = parse_document_url(&url).expect("url");
    fetcher
        .fetch(&url)
        .await
        .expect("trusted through SSL_CERT_FILE");
}

#[tokio::test]
async fn the_fetcher_follows_the_configuration() {
    let mut config = latchkey_core::config::Config::default();
    assert!(
        CimdFetcher::from_config(&config)
            .expect("fetcher")
            .is_some()
    );
    config.oauth2.client_id_metadata_documents.enabled = false;
    assert!(
        CimdFetcher::from_config(&config)
            .expect("fetcher")
            .is_none()
    );
}
