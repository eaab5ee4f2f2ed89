//! The test application: real routers over a fresh database, a mock clock and seeded randomness.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use latchkey_core::client::{ClientSecretRecord, ClientStatus, hash_client_secret};
use latchkey_core::clock::Clock as _;
use latchkey_core::config::Config;
use latchkey_core::crypto::SystemSecrets;
use latchkey_core::deps::Deps;
use latchkey_core::keys::{KeyService, Keys};
use latchkey_core::oauth::{Engine, EngineSettings};
use latchkey_core::store::Store as _;
use latchkey_core::testing::{MockClock, SeededEntropy, TEST_SECRET};
use latchkey_http::{AppState, HttpSettings};
use latchkey_store::SqlStore;
use latchkey_store::testing::TestDatabase;
use serde_json::Value;
use tower::ServiceExt as _;

/// Runs the test function `name(db: TestDatabase)` once per engine, as `name::sqlite` and
/// `name::postgres`, so that a failure names its engine. The PostgreSQL test passes with a note
/// on stderr when `LATCHKEY_TEST_POSTGRES_URL` is not set. Arguments after the name choose the
/// runtime as in `#[tokio::test(...)]`:
///
/// ```ignore
/// engine_test!(replayed_code_revokes_tokens);
/// /// A replayed code revokes what it issued.
/// async fn replayed_code_revokes_tokens(db: TestDatabase) {
///     let app = TestApp::new(db).await;
///     ...
/// }
/// ```
///
/// The test stays an ordinary function beside the macro, so rustfmt, clippy and the editor
/// treat it as code; a test without its macro is dead code, which the lints refuse.
macro_rules! engine_test {
    ($name:ident $(, $($runtime:tt)+)?) => {
        mod $name {
            #[tokio::test$(($($runtime)+))?]
            async fn sqlite() {
                super::$name(::latchkey_store::testing::TestDatabase::sqlite()).await;
            }

            #[tokio::test$(($($runtime)+))?]
            async fn postgres() {
                let Some(db) = ::latchkey_store::testing::TestDatabase::postgres().await else {
                    eprintln!(
                        "skipped: {} is not set",
                        ::latchkey_store::testing::POSTGRES_URL_VAR
                    );
                    return;
                };
                super::$name(db).await;
            }
        }
    };
}
pub(crate) use engine_test;

pub const ISSUER: &str = "https://auth.example.test";
pub const LOGIN_URL: &str = "https://login.example.test/login";
pub const CONSENT_URL: &str = "https://login.example.test/consent";

pub struct TestApp {
    pub store: SqlStore,
    #[allow(dead_code)]
    pub clock: MockClock,
    pub state: AppState,
    pub public: Router,
    pub admin: Router,
    db: Option<TestDatabase>,
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn new(db: TestDatabase) -> Self {
        Self::with_settings(db, |_| {}).await
    }

    pub async fn with_settings(db: TestDatabase, tweak: impl FnOnce(&mut HttpSettings)) -> Self {
        Self::build(db, ISSUER, tweak, |_| {}).await
    }

    /// An app whose configuration is first adjusted by `configure`.
    #[allow(dead_code)]
    pub async fn configured(db: TestDatabase, configure: impl FnOnce(&mut Config)) -> Self {
        Self::build(db, ISSUER, |_| {}, configure).await
    }

    /// An app whose issuer is `issuer` (one with a path, say), configured by `configure`.
    #[allow(dead_code)]
    pub async fn with_issuer(
        db: TestDatabase,
        issuer: &str,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        Self::build(db, issuer, |_| {}, configure).await
    }

    async fn build(
        db: TestDatabase,
        issuer: &str,
        tweak: impl FnOnce(&mut HttpSettings),
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let store = db.migrated().await;
        // Real time, so that libraries that check expiry against the wall clock agree.
        #[allow(clippy::disallowed_methods)]
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let clock = MockClock::new(i64::try_from(now).expect("time"));
        let mut app = Self::assemble(store, clock, 42, issuer, tweak, configure).await;
        app.db = Some(db);
        app
    }

    /// A second replica of `self`: its own connection pool on the same database, the same
    /// secrets and clock, the keys read from the database.
    #[allow(dead_code)]
    pub async fn replica(&self) -> Self {
        let url = self
            .db
            .as_ref()
            .expect("the first replica owns the database")
            .url
            .clone();
        let store = SqlStore::connect(&url, &latchkey_store::StoreOptions::default())
            .await
            .expect("second pool");
        Self::assemble(store, self.clock.clone(), 43, ISSUER, |_| {}, |_| {}).await
    }

    async fn assemble(
        store: SqlStore,
        clock: MockClock,
        seed: u64,
        issuer: &str,
        tweak: impl FnOnce(&mut HttpSettings),
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let deps = Deps {
            store: Arc::new(store.clone()),
            clock: Arc::new(clock.clone()),
            entropy: Arc::new(SeededEntropy::new(seed)),
            secrets: Arc::new(SystemSecrets::new(&[TEST_SECRET])),
        };
        let mut settings = HttpSettings::default();
        tweak(&mut settings);
        let mut config = Config::default();
        config.urls.login = Some(LOGIN_URL.into());
        config.urls.consent = Some(CONSENT_URL.into());
        // Tests send bursts from one address; the rate limit tests turn the limits on.
        config.rate_limits.enabled = false;
        configure(&mut config);
        let keys = KeyService::new(deps.clone(), Arc::new(Keys::default()))
            .requiring(config.oauth2.access_token_signing_alg);
        keys.ensure().await.expect("keys");
        let engine = Engine::new(
            deps,
            EngineSettings::from_config(&config, issuer),
            keys.keys().clone(),
        )
        .with_throttle(Arc::new(latchkey_core::throttle::Throttle::new(
            &config.rate_limits,
        )));
        let state = AppState::new(engine, keys, settings);
        Self {
            public: latchkey_http::public_router(state.clone()),
            admin: latchkey_http::admin_router(state.clone()),
            store,
            clock,
            state,
            db: None,
        }
    }

    /// An app whose built-in pages are the login and consent provider, with the demo catalog and
    /// DNS asked at `dns` (a test's own server).
    #[allow(dead_code)]
    pub async fn platform(db: TestDatabase, dns: Option<std::net::SocketAddr>) -> Self {
        Self::platform_with(db, dns, |_| {}).await
    }

    /// [`Self::platform`] with the platform's settings first adjusted by `tweak`.
    #[allow(dead_code)]
    pub async fn platform_with(
        db: TestDatabase,
        dns: Option<std::net::SocketAddr>,
        tweak: impl FnOnce(&mut latchkey_core::platform::PlatformSettings),
    ) -> Self {
        Self::platform_built(db, dns, |_| {}, tweak).await
    }

    /// [`Self::platform`] with the configuration first adjusted by `configure` (to turn the
    /// rate limits on, say).
    #[allow(dead_code)]
    pub async fn platform_configured(
        db: TestDatabase,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        Self::platform_built(db, None, configure, |_| {}).await
    }

    async fn platform_built(
        db: TestDatabase,
        dns: Option<std::net::SocketAddr>,
        configure: impl FnOnce(&mut Config),
        tweak: impl FnOnce(&mut latchkey_core::platform::PlatformSettings),
    ) -> Self {
        let mut app = Self::build(
            db,
            ISSUER,
            |_| {},
            |c| {
                c.urls.login = None;
                c.urls.consent = None;
                configure(c);
            },
        )
        .await;
        let engine = app.state.engine.clone();
        let mut settings = latchkey_core::platform::PlatformSettings {
            console_session_ttl: 3600,
            remembered_session_ttl: 86_400,
            ..latchkey_core::platform::PlatformSettings::from_config(&Config::default())
        };
        tweak(&mut settings);
        let platform = latchkey_core::platform::Platform::new(
            engine,
            latchkey_core::platform::catalog::Catalog::with_scopes(
                &latchkey_core::platform::catalog::demo_scopes(),
            )
            .expect("catalog"),
            Arc::new(latchkey_http::platform_io::TokioBlocking),
            Arc::new(latchkey_http::platform_io::DnsResolver::new(dns).expect("resolver")),
            settings,
        );
        app.state = app.state.clone().with_platform(platform);
        app.public = latchkey_http::public_router(app.state.clone());
        app.admin = latchkey_http::admin_router(app.state.clone());
        app
    }

    pub async fn call(router: &Router, req: Request<Body>) -> Answer {
        let res = router.clone().oneshot(req).await.expect("router answers");
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&v).expect("json"))
            }
            None => Body::empty(),
        };
        Self::call(&self.admin, req.body(body).expect("request")).await
    }

    pub async fn get_public(&self, path: &str) -> Answer {
        Self::call(
            &self.public,
            Request::get(path).body(Body::empty()).expect("request"),
        )
        .await
    }

    /// Counts rows of a table, to assert that a refused request changed nothing.
    pub async fn count(&self, table: &str) -> i64 {
        self.store.count_rows(table).await.expect("count")
    }

    /// Sets a client's status in the database directly, behind every replica's cache.
    pub async fn set_status_in_db(&self, id: &str, status: ClientStatus) {
        let mut tx = self.store.begin().await.expect("tx");
        let mut c = tx.clients().get(id).await.expect("get").expect("client");
        c.status = status;
        tx.clients().update(&c).await.expect("update");
        tx.commit().await.expect("commit");
    }

    /// Replaces a client's secrets with `secret` in the database directly, behind every
    /// replica's cache.
    pub async fn replace_secret_in_db(&self, client_id: &str, secret: &str) {
        let mut tx = self.store.begin().await.expect("tx");
        let old = tx.clients().secrets(client_id).await.expect("secrets");
        tx.clients()
            .insert_secret(&ClientSecretRecord {
                id: "replacement".into(),
                client_id: client_id.into(),
                secret_hash: hash_client_secret(secret),
                created_at: self.clock.now(),
                expires_at: None,
            })
            .await
            .expect("insert secret");
        for s in &old {
            tx.clients()
                .delete_secret(client_id, &s.id)
                .await
                .expect("delete secret");
        }
        tx.commit().await.expect("commit");
    }
}

/// An app on real sockets: the public router over TLS (a fresh self-signed certificate for
/// 127.0.0.1) and the admin router over plain HTTP, both on loopback; the issuer is the public
/// URL.
pub struct Served {
    #[allow(dead_code)]
    pub app: TestApp,
    pub public: String,
    pub admin: String,
    /// The certificate clients must trust, PEM.
    pub ca_pem: String,
}

impl Served {
    pub async fn start(db: TestDatabase) -> Self {
        let public_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let public = format!("https://{}", public_listener.local_addr().expect("addr"));
        let admin = format!("http://{}", admin_listener.local_addr().expect("addr"));
        let app = TestApp::build(db, &public, |_| {}, |_| {}).await;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let cert =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
        let ca_pem = cert.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("tls config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let router = app.public.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = public_listener.accept().await else {
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
        tokio::spawn(axum::serve(admin_listener, app.admin.clone()).into_future());
        Self {
            app,
            public,
            admin,
            ca_pem,
        }
    }
}
