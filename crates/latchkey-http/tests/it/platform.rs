//! The platform over HTTP: the self-service API (authorization between accounts, bad input),
//! domain verification against a local DNS server, and the consent form's defenses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures_util::future::join_all;
use latchkey_core::audit::Actor;
use latchkey_core::platform::catalog::{Catalog, demo_scopes};
use latchkey_core::platform::login::{IP_FREE_FAILURES, USER_FREE_FAILURES};
use latchkey_core::platform::model::{AccountKind, Role, User};
use latchkey_core::platform::password::{BlockingExecutor, BlockingJob};
use latchkey_core::platform::{Platform, PlatformError};
use latchkey_core::secret::SecretString;
use latchkey_http::platform_io::{DnsResolver, TokioBlocking};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::support::{Answer, TestApp, engine_test};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A signed-in user of the console: the session cookie and the CSRF token of the session.
pub(crate) struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub(crate) async fn world(app: &TestApp) -> (Session, Session) {
    let p = &app.state.platform;
    let actor = Actor::cli();
    p.create_account(Some("acme"), "Acme", AccountKind::Customer, &actor)
        .await
        .expect("acme");
    p.create_account(Some("beta"), "Beta", AccountKind::Customer, &actor)
        .await
        .expect("beta");
    let mut sessions = Vec::new();
    for (email, account) in [("alice@acme.test", "acme"), ("bob@beta.test", "beta")] {
        let user = p
            .create_user(email, "", SecretString::new(PASSWORD), false, &actor)
            .await
            .expect("user");
        p.add_member(account, email, Role::Owner, &actor)
            .await
            .expect("member");
        let cookie = p
            .start_session(&user.id, false)
            .await
            .expect("session")
            .value
            .into_exposed();
        let (session, _) = p.session(&cookie).await.expect("read").expect("live");
        sessions.push(Session {
            cookie: format!("__Host-latchkey_console={cookie}"),
            csrf: p.form_token("console", &session.id),
        });
    }
    let bob = sessions.pop().expect("bob");
    (sessions.pop().expect("alice"), bob)
}

pub(crate) async fn api(
    app: &TestApp,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf-token", &s.csrf);
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(&v).expect("json"))
        }
        None => Body::empty(),
    };
    TestApp::call(&app.public, req.body(body).expect("request")).await
}

pub(crate) fn app_body() -> Value {
    json!({
        "name": "Acme Reports",
        "app_type": "web",
        "redirect_uris": ["https://reports.acme.example/callback"],
        "client_uri": "https://reports.acme.example/",
        "scopes": ["openid", "dns.read"],
        "optional_scopes": ["workers.read"],
    })
}

engine_test!(members_of_another_account_can_neither_read_change_nor_delete_an_app);
async fn members_of_another_account_can_neither_read_change_nor_delete_an_app(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, bob) = world(&app).await;
    let created = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(app_body()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let c = created.json();
    assert!(
        c["client_secret"]
            .as_str()
            .expect("secret")
            .starts_with("lk_cs_")
    );
    assert_eq!(c["visibility"], "private");
    let id = c["client_id"].as_str().expect("id").to_owned();
    let one = format!("/api/v1/accounts/acme/apps/{id}");
    let listed = api(
        &app,
        &alice,
        Method::GET,
        "/api/v1/accounts/acme/apps",
        None,
    )
    .await;
    assert_eq!(listed.json().as_array().expect("list").len(), 1);
    assert!(
        listed.json()[0].get("client_secret").is_none(),
        "the secret is shown once"
    );

    let before = app.store.snapshot().await.expect("snapshot");
    for (method, path, body) in [
        (Method::GET, one.clone(), None),
        (Method::PATCH, one.clone(), Some(json!({"name": "Stolen"}))),
        (Method::DELETE, one.clone(), None),
        (Method::POST, format!("{one}/rotate_secret"), None),
        (Method::GET, "/api/v1/accounts/acme/apps".to_owned(), None),
        (
            Method::POST,
            "/api/v1/accounts/acme/apps".to_owned(),
            Some(app_body()),
        ),
    ] {
        let res = api(&app, &bob, method.clone(), &path, body).await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            res.text()
        );
        assert!(
            res.json()["error_description"]
                .as_str()
                .expect("why")
                .contains("not a member")
        );
    }
    // Through their own account's path, the app is simply not there.
    for method in [Method::GET, Method::DELETE] {
        let res = api(
            &app,
            &bob,
            method.clone(),
            &format!("/api/v1/accounts/beta/apps/{id}"),
            None,
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::NOT_FOUND,
            "{method}: {}",
            res.text()
        );
    }
    // No session at all.
    let anon = TestApp::call(
        &app.public,
        Request::get(&one).body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "nothing changed"
    );

    // The owner deletes it: the app and everything it held go.
    let res = api(&app, &alice, Method::DELETE, &one, None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert_eq!(app.count("apps").await, 0);
}

engine_test!(bad_input_is_refused_with_a_clear_message_and_nothing_stored);
async fn bad_input_is_refused_with_a_clear_message_and_nothing_stored(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let before = app.store.snapshot().await.expect("snapshot");
    let long = "x".repeat(81);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"scopes": ["openid", "nuclear.launch"]}),
            "not in the permission catalog",
        ),
        (
            json!({"scopes": ["openid", "members.write"]}),
            "restricted scope",
        ),
        (json!({"optional_scopes": ["dns.write"]}), "sensitive scope"),
        (
            json!({"redirect_uris": ["https://reports.acme.example/cb#frag"]}),
            "fragment",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "javascript",
        ),
        (json!({"name": long}), "at most 80 characters"),
        (
            json!({"logo_uri": "http://reports.acme.example/logo.png"}),
            "https",
        ),
        (json!({"name": "Latchk3y Official"}), "platform's name"),
        (json!({"visibility": "public"}), "private"),
    ];
    for (patch, why) in cases {
        let mut body = app_body();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let res = api(
            &app,
            &alice,
            Method::POST,
            "/api/v1/accounts/acme/apps",
            Some(body),
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{patch}: {}",
            res.text()
        );
        let msg = res.json()["error_description"]
            .as_str()
            .expect("why")
            .to_owned();
        assert!(msg.contains(why), "{patch}: {msg}");
    }
    // Unknown fields and a forged CSRF token.
    let mut body = app_body();
    body["client_secret"] = json!("mine");
    let res = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let forged = Session {
        cookie: alice.cookie.clone(),
        csrf: "forged".into(),
    };
    let res = api(
        &app,
        &forged,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(app_body()),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "nothing stored"
    );
}

/// A DNS server on loopback that answers every TXT question with the current `value`.
pub(crate) async fn dns_server(
    value: std::sync::Arc<std::sync::Mutex<String>>,
) -> std::net::SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let q = &buf[..n];
            if n < 12 {
                continue;
            }
            let value = value.lock().expect("lock").clone();
            // The question ends after the name's zero label and four bytes of type and class.
            let mut i = 12;
            while i < n && q[i] != 0 {
                i += 1 + usize::from(q[i]);
            }
            let end = (i + 5).min(n);
            let mut out = Vec::new();
            out.extend_from_slice(&q[..2]);
            out.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
            out.extend_from_slice(&q[12..end]);
            out.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
            let len = u16::try_from(value.len() + 1).expect("short");
            out.extend_from_slice(&len.to_be_bytes());
            out.push(u8::try_from(value.len()).expect("short"));
            out.extend_from_slice(value.as_bytes());
            let _ = socket.send_to(&out, peer).await;
        }
    });
    addr
}

engine_test!(domain_verification_reads_the_txt_record_locks_the_domain_and_opens_going_public);
async fn domain_verification_reads_the_txt_record_locks_the_domain_and_opens_going_public(
    db: TestDatabase,
) {
    let answer = std::sync::Arc::new(std::sync::Mutex::new(
        "latchkey-app-verification=nope".to_owned(),
    ));
    let dns = dns_server(answer.clone()).await;
    let app = TestApp::platform(db, Some(dns)).await;
    let (alice, _) = world(&app).await;
    let mut body = app_body();
    body["logo_uri"] = json!("https://reports.acme.example/logo.png");
    let created = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["client_id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/accounts/acme/apps/{id}");
    let verify = format!("{path}/verification");

    // Going public needs a verified domain (the default policy).
    let before = app.store.snapshot().await.expect("snapshot");
    let early = api(
        &app,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{}", early.text());
    assert!(
        early.text().contains("a verified domain"),
        "{}",
        early.text()
    );
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);

    let started = api(&app, &alice, Method::POST, &verify, None).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text());
    let record = started.json()["verification"].clone();
    assert_eq!(record["name"], "reports.acme.example");
    let missing = api(&app, &alice, Method::POST, &verify, None).await;
    assert_eq!(missing.status, StatusCode::CONFLICT, "{}", missing.text());
    assert!(missing.text().contains("no TXT record"));

    // The record is published: the domain is verified and locked to this app.
    record["value"]
        .as_str()
        .expect("value")
        .clone_into(&mut answer.lock().expect("lock"));
    let verified = api(&app, &alice, Method::POST, &verify, None).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
    let shown = api(&app, &alice, Method::GET, &path, None).await.json();
    assert_eq!(
        (shown["domain"].clone(), shown["domain_verified"].clone()),
        (json!("reports.acme.example"), json!(true)),
        "{shown}"
    );

    let copy = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(json!({
            "name": "Acme Reports Two",
            "app_type": "web",
            "redirect_uris": ["https://reports.acme.example/other"],
            "client_uri": "https://reports.acme.example/",
            "scopes": ["openid"],
        })),
    )
    .await;
    let copy_id = copy.json()["client_id"].as_str().expect("id").to_owned();
    let copy_verify = format!("/api/v1/accounts/acme/apps/{copy_id}/verification");
    let started = api(&app, &alice, Method::POST, &copy_verify, None)
        .await
        .json();
    started["verification"]["value"]
        .as_str()
        .expect("value")
        .clone_into(&mut answer.lock().expect("lock"));
    let before = app.store.snapshot().await.expect("snapshot");
    let taken = api(&app, &alice, Method::POST, &copy_verify, None).await;
    assert_eq!(
        taken.status,
        StatusCode::CONFLICT,
        "a verified domain belongs to one app: {}",
        taken.text()
    );
    assert!(
        taken.text().contains("verified by another app"),
        "{}",
        taken.text()
    );
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);

    // Now it may go public, once and for good.
    let public = api(
        &app,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text());
    assert_eq!(public.json()["visibility"], "public");
    assert_eq!(public.json().get("user_cap"), None, "{}", public.text());
    let back = api(
        &app,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"visibility": "private"})),
    )
    .await;
    assert_eq!(
        back.status,
        StatusCode::BAD_REQUEST,
        "going public is one-way"
    );
}

/// Drives a browser through `/oauth2/auth` and the built-in login to the consent page.
#[derive(Default)]
pub(crate) struct Flow {
    pub jar: BTreeMap<String, String>,
}

impl Flow {
    fn cookies(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &Answer) {
        for v in res.headers.get_all(header::SET_COOKIE) {
            let c = cookie::Cookie::parse(v.to_str().expect("ascii").to_owned()).expect("cookie");
            if c.value().is_empty() {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    pub async fn get(&mut self, app: &TestApp, path: &str) -> Answer {
        let path = path.strip_prefix(crate::support::ISSUER).unwrap_or(path);
        let req = Request::get(path)
            .header(header::COOKIE, self.cookies())
            .body(Body::empty())
            .expect("req");
        let res = TestApp::call(&app.public, req).await;
        self.keep(&res);
        res
    }

    pub async fn post(&mut self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(form).expect("form");
        let req = Request::post(path)
            .header(header::COOKIE, self.cookies())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("req");
        let res = TestApp::call(&app.public, req).await;
        self.keep(&res);
        res
    }
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

pub(crate) fn location(res: &Answer) -> String {
    assert!(
        res.status.is_redirection(),
        "{}: {}",
        res.status,
        res.text()
    );
    res.header("location").expect("location").to_owned()
}

pub(crate) async fn to_consent(
    app: &TestApp,
    client_id: &str,
    email: &str,
) -> (Flow, String, String) {
    to_consent_for(app, client_id, email, "openid dns.read workers.read").await
}

/// [`to_consent`] for `scope` (space-separated); the redirect URI is `http://127.0.0.1:9999/cb`
/// and the PKCE verifier `pkce(1)`'s.
pub(crate) async fn to_consent_for(
    app: &TestApp,
    client_id: &str,
    email: &str,
    scope: &str,
) -> (Flow, String, String) {
    let mut f = Flow {
        jar: BTreeMap::new(),
    };
    let challenge = crate::browser::pkce(1).challenge;
    let scope = scope.replace(' ', "%20");
    let res = f
        .get(app, &format!(
            "/oauth2/auth?client_id={client_id}&response_type=code&redirect_uri=http://127.0.0.1:9999/cb&scope={scope}&state=s-0123456789&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let login = location(&res);
    assert!(login.contains("/ui/login?login_challenge="), "{login}");
    let page = f.get(app, &login).await;
    let lc = hidden(&page.text(), "login_challenge");
    let csrf = hidden(&page.text(), "csrf_token");
    let res = f
        .post(
            app,
            "/ui/login",
            &[
                ("csrf_token", &csrf),
                ("login_challenge", &lc),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    let back = location(&res);
    let res = f.get(app, &back).await;
    let consent = location(&res);
    assert!(
        consent.contains("/ui/consent?consent_challenge="),
        "{consent}"
    );
    let page = f.get(app, &consent).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let csp = page
        .header("content-security-policy")
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:*"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let cc = hidden(&page.text(), "consent_challenge");
    let token = hidden(&page.text(), "csrf_token");
    (f, cc, token)
}

engine_test!(the_consent_form_refuses_forgery_replay_and_another_users_challenge);
async fn the_consent_form_refuses_forgery_replay_and_another_users_challenge(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let mut body = app_body();
    body["app_type"] = json!("native");
    body["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
    let created = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    let id = created.json()["client_id"].as_str().expect("id").to_owned();

    let (mut f, cc, token) = to_consent(&app, &id, "alice@acme.test").await;
    let mut bob_flow = to_consent_bob(&app).await;
    let before = app.store.snapshot().await.expect("snapshot");
    // A forged token.
    let res = f
        .post(
            &app,
            "/ui/consent",
            &[
                ("consent_challenge", &cc),
                ("csrf_token", "forged"),
                ("decision", "allow"),
                ("account", "acme"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    // Bob, signed in, posts Alice's challenge (with a token of his own session).
    let bob_session = bob_flow
        .jar
        .get("__Host-latchkey_console")
        .cloned()
        .expect("bob session");
    let (s, _) = app
        .state
        .platform
        .session(&bob_session)
        .await
        .expect("read")
        .expect("live");
    let bob_token = app
        .state
        .platform
        .form_token("consent", &format!("{}\0{cc}", s.id));
    let res = bob_flow
        .post(
            &app,
            "/ui/consent",
            &[
                ("consent_challenge", &cc),
                ("csrf_token", &bob_token),
                ("decision", "allow"),
                ("account", "beta"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert!(res.text().contains("another user"), "{}", res.text());
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "nothing stored"
    );

    // Alice authorizes; the same form posted again is refused.
    let form = [
        ("consent_challenge", cc.as_str()),
        ("csrf_token", token.as_str()),
        ("decision", "allow"),
        ("account", "acme"),
        ("scope", "workers.read"),
    ];
    let res = f.post(&app, "/ui/consent", &form).await;
    assert!(location(&res).contains("consent_verifier="));
    let before = app.store.snapshot().await.expect("snapshot");
    let again = f.post(&app, "/ui/consent", &form).await;
    assert_eq!(again.status, StatusCode::GONE, "{}", again.text());
    assert!(again.text().contains("already handled"));
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "nothing stored"
    );
}

/// Bob signed in through the login page (no flow needed: he only needs a session).
async fn to_consent_bob(app: &TestApp) -> Flow {
    let mut f = Flow {
        jar: BTreeMap::new(),
    };
    let page = f.get(app, "/ui/login").await;
    let csrf = hidden(&page.text(), "csrf_token");
    let res = f
        .post(
            app,
            "/ui/login",
            &[
                ("csrf_token", &csrf),
                ("email", "bob@beta.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/apps");
    f
}

engine_test!(repeated_login_failures_back_off_per_user_without_saying_whether_the_user_exists);
async fn repeated_login_failures_back_off_per_user_without_saying_whether_the_user_exists(
    db: TestDatabase,
) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let mut f = Flow {
        jar: BTreeMap::new(),
    };
    let page = f.get(&app, "/ui/login").await;
    let csrf = hidden(&page.text(), "csrf_token");
    let mut texts = Vec::new();
    for email in ["alice@acme.test", "nobody@acme.test"] {
        let res = f
            .post(
                &app,
                "/ui/login",
                &[
                    ("csrf_token", &csrf),
                    ("email", email),
                    ("password", "wrong password!"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        texts.push(res.text().replace(email, "EMAIL"));
    }
    assert_eq!(
        texts[0], texts[1],
        "unknown users and wrong passwords look alike"
    );
    for _ in 0..4 {
        f.post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", &csrf),
                ("email", "alice@acme.test"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    }
    let res = f
        .post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", &csrf),
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    app.clock.advance(31);
    let res = f
        .post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", &csrf),
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/apps");
    // A forged login form is refused.
    let res = f
        .post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", "forged"),
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

/// Counts the jobs it runs on tokio's blocking pool. The built-in login runs exactly one per
/// attempt that gets to the password: its hash check.
#[derive(Debug, Default)]
struct HashChecks(std::sync::atomic::AtomicUsize);

impl HashChecks {
    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl BlockingExecutor for HashChecks {
    async fn run(&self, job: BlockingJob) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TokioBlocking.run(job).await;
    }
}

/// The app's platform, with its password checks counted.
fn counting_platform(app: &TestApp, checks: &Arc<HashChecks>) -> Platform {
    Platform::new(
        app.state.engine.clone(),
        Catalog::with_scopes(&demo_scopes()).expect("catalog"),
        checks.clone(),
        Arc::new(DnsResolver::new(None).expect("resolver")),
        app.state.platform.settings().clone(),
    )
}

/// Tallies the answers to a burst of wrong passwords: (wrong, throttled).
fn tally(results: &[Result<User, PlatformError>]) -> (usize, usize) {
    let mut wrong = 0;
    let mut throttled = 0;
    for r in results {
        match r {
            Err(PlatformError::BadCredentials) => wrong += 1,
            Err(PlatformError::Throttled { retry_after }) => {
                assert!(*retry_after > 0);
                throttled += 1;
            }
            other => panic!("a wrong password answered {other:?}"),
        }
    }
    (wrong, throttled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_check_no_more_hashes_than_the_backoff_allows() {
    const BURST: usize = 50;
    let user_free = usize::try_from(USER_FREE_FAILURES).expect("small");
    let ip_free = usize::try_from(IP_FREE_FAILURES).expect("small");
    for db in TestDatabase::all().await {
        let backend = db.backend;
        let app = TestApp::platform(db, None).await;
        world(&app).await;
        let checks = Arc::new(HashChecks::default());
        let platform = counting_platform(&app, &checks);

        // One user, from many addresses: the user's counter holds.
        let results = join_all((0..BURST).map(|i| {
            platform.authenticate(
                "alice@acme.test",
                SecretString::new(format!("wrong password {i}")),
                Some(IpAddr::from([
                    198,
                    51,
                    100,
                    u8::try_from(i).expect("small"),
                ])),
            )
        }))
        .await;
        assert_eq!(
            checks.count(),
            user_free,
            "hash checks for one user ({backend:?})"
        );
        assert_eq!(tally(&results), (user_free, BURST - user_free));
        // The right password is refused too, without a check, until the backoff ends.
        let right = platform
            .authenticate("alice@acme.test", SecretString::new(PASSWORD), None)
            .await;
        assert!(
            matches!(right, Err(PlatformError::Throttled { .. })),
            "{right:?}"
        );
        assert_eq!(checks.count(), user_free);
        app.clock.advance(31);
        let alice = platform
            .authenticate("alice@acme.test", SecretString::new(PASSWORD), None)
            .await
            .expect("the right password after the backoff");
        assert_eq!(alice.email, "alice@acme.test");

        // Many users (known or not), from one address: the address's counter holds.
        let before = checks.count();
        let address = Some(IpAddr::from([203, 0, 113, 7]));
        let emails: Vec<String> = (0..BURST).map(|i| format!("user{i}@acme.test")).collect();
        let results = join_all(emails.iter().map(|email| {
            platform.authenticate(email, SecretString::new("wrong password"), address)
        }))
        .await;
        assert_eq!(
            checks.count() - before,
            ip_free,
            "hash checks from one address ({backend:?})"
        );
        assert_eq!(tally(&results), (ip_free, BURST - ip_free));
    }
}

/// A console session for a new user; `operator` makes it the platform's operator.
pub(crate) async fn console_user(app: &TestApp, email: &str, operator: bool) -> Session {
    let p = &app.state.platform;
    let user = p
        .create_user(
            email,
            "",
            SecretString::new(PASSWORD),
            operator,
            &Actor::cli(),
        )
        .await
        .expect("user");
    let cookie = p
        .start_session(&user.id, false)
        .await
        .expect("session")
        .value
        .into_exposed();
    let (session, _) = p.session(&cookie).await.expect("read").expect("live");
    Session {
        cookie: format!("__Host-latchkey_console={cookie}"),
        csrf: p.form_token("console", &session.id),
    }
}

pub(crate) async fn console_post(
    app: &TestApp,
    s: &Session,
    path: &str,
    form: &[(&str, &str)],
) -> Answer {
    let mut fields = vec![("csrf_token", s.csrf.as_str())];
    fields.extend_from_slice(form);
    let req = Request::post(path)
        .header(header::COOKIE, &s.cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            serde_urlencoded::to_string(&fields).expect("form"),
        ))
        .expect("req");
    TestApp::call(&app.public, req).await
}

engine_test!(the_operator_suspends_and_reinstates_an_app_from_the_console);
async fn the_operator_suspends_and_reinstates_an_app_from_the_console(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let operator = console_user(&app, "operator@platform.test", true).await;
    let service = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;
    let token = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await
        .json();
    let at = token["access_token"].as_str().expect("at").to_owned();
    let suspend = format!("/ui/admin/apps/{}/suspend", service.id);

    // Not an operator: refused, nothing changes.
    let before = app.store.snapshot().await.expect("snapshot");
    let res = console_post(&app, &alice, &suspend, &[]).await;
    assert!(res.status.is_client_error(), "{}", res.status);
    // A forged CSRF token: refused, nothing changes.
    let forged = Session {
        cookie: operator.cookie.clone(),
        csrf: "forged".into(),
    };
    let res = console_post(&app, &forged, &suspend, &[]).await;
    assert!(res.status.is_client_error(), "{}", res.status);
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
    assert_eq!(app.introspect(&at).await["active"], true);

    // The kill switch: the token stops at once, and no new one is issued.
    let res = console_post(&app, &operator, &suspend, &[]).await;
    assert!(
        res.status.is_redirection() || res.status.is_success(),
        "{}: {}",
        res.status,
        res.text()
    );
    assert_eq!(app.introspect(&at).await["active"], false);
    assert_eq!(
        app.token(&service, &[("grant_type", "client_credentials")])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        crate::revocations::logged_kinds(&app).await,
        ["client_suspended"]
    );

    let res = console_post(
        &app,
        &operator,
        &format!("/ui/admin/apps/{}/reinstate", service.id),
        &[],
    )
    .await;
    assert!(
        res.status.is_redirection() || res.status.is_success(),
        "{}",
        res.status
    );
    assert_eq!(
        app.introspect(&at).await["active"],
        true,
        "reinstated: its unexpired tokens work again"
    );
    assert_eq!(
        app.token(&service, &[("grant_type", "client_credentials")])
            .await
            .status,
        StatusCode::OK
    );
    let audit = app.admin(Method::GET, "/admin/version", None).await;
    assert_eq!(audit.status, StatusCode::OK);
}

engine_test!(the_operator_approves_a_restricted_scope_an_app_asked_for);
async fn the_operator_approves_a_restricted_scope_an_app_asked_for(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let operator = console_user(&app, "operator@platform.test", true).await;
    let created = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(app_body()),
    )
    .await;
    let id = created.json()["client_id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/accounts/acme/apps/{id}");
    // A restricted scope cannot simply be added.
    let refused = api(
        &app,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"scopes": ["openid", "members.write"]})),
    )
    .await;
    assert!(refused.status.is_client_error(), "{}", refused.text());
    let asked = api(
        &app,
        &alice,
        Method::POST,
        &format!("{path}/scope_requests"),
        Some(json!({"scope": "members.write"})),
    )
    .await;
    assert!(asked.status.is_success(), "{}", asked.text());
    assert_eq!(
        api(&app, &alice, Method::GET, &path, None).await.json()["pending_restricted_scopes"],
        json!(["members.write"])
    );
    let res = console_post(
        &app,
        &operator,
        &format!("/ui/admin/apps/{id}/approve"),
        &[("scope", "members.write")],
    )
    .await;
    assert!(
        res.status.is_redirection() || res.status.is_success(),
        "{}",
        res.status
    );
    let shown = api(&app, &alice, Method::GET, &path, None).await.json();
    assert_eq!(
        shown["approved_restricted_scopes"],
        json!(["members.write"])
    );
    let added = api(
        &app,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"scopes": ["openid", "dns.read", "members.write"]})),
    )
    .await;
    assert_eq!(
        added.status,
        StatusCode::OK,
        "approved: the app may now request it: {}",
        added.text()
    );
}

engine_test!(a_refresh_token_after_a_confirmed_secret_rotation_needs_the_new_secret);
async fn a_refresh_token_after_a_confirmed_secret_rotation_needs_the_new_secret(db: TestDatabase) {
    use crate::browser::{Browser, FlowOptions, Registered, pkce, query, run_flow};
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let mut body = app_body();
    body["redirect_uris"] = json!([crate::browser::REDIRECT]);
    body["scopes"] = json!(["openid", "offline_access", "dns.read"]);
    let created = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let created = created.json();
    let id = created["client_id"].as_str().expect("id").to_owned();
    let old = Registered {
        id: id.clone(),
        secret: created["client_secret"].as_str().map(Into::into),
    };

    // A family, through the Hydra-compatible door (the admin API plays the consent app).
    let p = pkce(8);
    let o = FlowOptions {
        scope: "openid offline_access dns.read",
        consent: json!({"grant_scope": ["openid", "offline_access", "dns.read"]}),
        ..FlowOptions::default()
    };
    let callback = run_flow(&app, &mut Browser::default(), &id, &p, &o).await;
    let code = query(&callback)["code"].clone();
    let t = app
        .token(
            &old,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", crate::browser::REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    let mut rt = t.json()["refresh_token"].as_str().expect("rt").to_owned();

    // Rotation: both secrets work until the new one is confirmed.
    let rotate = format!("/api/v1/accounts/acme/apps/{id}/rotate_secret");
    let rotated = api(&app, &alice, Method::POST, &rotate, None).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let new = Registered {
        id: id.clone(),
        secret: rotated.json()["client_secret"].as_str().map(Into::into),
    };
    assert_ne!(new.secret, old.secret);
    let r = app
        .token(
            &old,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the old secret still works: {}",
        r.text()
    );
    r.json()["refresh_token"]
        .as_str()
        .expect("rt")
        .clone_into(&mut rt);
    let confirmed = api(&app, &alice, Method::DELETE, &rotate, None).await;
    assert!(confirmed.status.is_success(), "{}", confirmed.text());
    assert_eq!(
        crate::revocations::logged_kinds(&app).await,
        ["secret_rotated_out"]
    );

    // After the confirmation the old secret is refused — and nothing changes.
    let before = app.store.snapshot().await.expect("snapshot");
    let r = app
        .token(
            &old,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_client");
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
    let r = app
        .token(
            &new,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the family lives on with the new secret: {}",
        r.text()
    );
}

engine_test!(the_built_in_login_honours_skip_prompt_login_and_max_age);
async fn the_built_in_login_honours_skip_prompt_login_and_max_age(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let created = app
        .register(
            json!({"redirect_uris": ["http://127.0.0.1:9999/cb"], "scope": "openid dns.read"}),
        )
        .await;
    let challenge = crate::browser::pkce(1).challenge;
    let auth = |extra: &str| {
        format!(
            "/oauth2/auth?client_id={}&response_type=code&redirect_uri=http://127.0.0.1:9999/cb&scope=openid&state=s-0123456789&code_challenge={challenge}&code_challenge_method=S256{extra}",
            created.id
        )
    };
    let mut f = Flow {
        jar: BTreeMap::new(),
    };
    // First time: the form, then a remembered login.
    let login = location(&f.get(&app, &auth("")).await);
    let page = f.get(&app, &login).await;
    assert!(
        page.text().contains("name=\"password\""),
        "the form is shown"
    );
    let res = f
        .post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", &hidden(&page.text(), "csrf_token")),
                ("login_challenge", &hidden(&page.text(), "login_challenge")),
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
                ("remember", "1"),
            ],
        )
        .await;
    assert!(location(&res).contains("login_verifier="));
    f.get(&app, &location(&res)).await;

    // A remembered login is skipped: no form, straight back to the flow.
    let login = location(&f.get(&app, &auth("")).await);
    let res = f.get(&app, &login).await;
    assert!(res.status.is_redirection(), "skip: {}", res.text());
    assert!(location(&res).contains("login_verifier="));

    // prompt=login and an expired max_age show the form again.
    for extra in ["&prompt=login", "&max_age=60"] {
        if extra.contains("max_age") {
            app.clock.advance(120);
        }
        let login = location(&f.get(&app, &auth(extra)).await);
        let page = f.get(&app, &login).await;
        assert_eq!(page.status, StatusCode::OK, "{extra}");
        assert!(
            page.text().contains("name=\"password\""),
            "{extra}: the form is shown again"
        );
    }
}

/// An access token for the self-service API: `email` grants `openid apps.write` on `account` to
/// a first-party app (registered by the operator), through the login and consent pages.
pub(crate) async fn api_token(app: &TestApp, email: &str, account: &str) -> String {
    let client = app
        .register(json!({
            "client_name": "Deploy CLI",
            "redirect_uris": ["http://127.0.0.1:9999/cb"],
            "scope": "openid apps.write",
        }))
        .await;
    let (mut f, cc, csrf) = to_consent_for(app, &client.id, email, "openid apps.write").await;
    let res = f
        .post(
            app,
            "/ui/consent",
            &[
                ("consent_challenge", cc.as_str()),
                ("csrf_token", csrf.as_str()),
                ("decision", "allow"),
                ("account", account),
            ],
        )
        .await;
    let done = f.get(app, &location(&res)).await;
    let code = crate::browser::query(&location(&done))["code"].clone();
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9999/cb"),
                ("code_verifier", &crate::browser::pkce(1).verifier),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// A GET of `path` on `router` with this `Authorization` header and, when given, the address a
/// trusted proxy names in `X-Forwarded-For`.
pub(crate) async fn get_with_authorization(
    router: &axum::Router,
    path: &str,
    authorization: &str,
    address: Option<&str>,
) -> Answer {
    let mut req = Request::get(path).header(header::AUTHORIZATION, authorization);
    if let Some(a) = address {
        req = req.header("x-forwarded-for", a);
    }
    TestApp::call(router, req.body(Body::empty()).expect("request")).await
}

engine_test!(the_api_and_userinfo_take_a_bearer_token_whatever_the_case_of_the_scheme);
async fn the_api_and_userinfo_take_a_bearer_token_whatever_the_case_of_the_scheme(
    db: TestDatabase,
) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let token = api_token(&app, "alice@acme.test", "acme").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let authorization = format!("{scheme} {token}");
        let res = get_with_authorization(
            &app.public,
            "/api/v1/accounts/acme/apps",
            &authorization,
            None,
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{scheme}: {}", res.text());
        assert!(res.json().is_array(), "{scheme}");
        let res = get_with_authorization(&app.public, "/userinfo", &authorization, None).await;
        assert_eq!(res.status, StatusCode::OK, "{scheme}: {}", res.text());
        assert!(res.json()["sub"].is_string(), "{scheme}");
    }
    // Another scheme is still no bearer token.
    let res = get_with_authorization(
        &app.public,
        "/api/v1/accounts/acme/apps",
        &format!("Token {token}"),
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
}

engine_test!(an_unusable_next_after_the_login_goes_to_the_default_page);
async fn an_unusable_next_after_the_login_goes_to_the_default_page(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    for next in [
        "/ui/developer\r\nSet-Cookie: injected=1",
        "/ui/developer\nX: y",
        "/ui/developer\t",
        "/ui/d\u{e9}veloppeur",
        "/ui/developer page",
        "https://evil.example/ui/",
        "//evil.example/ui/",
        "/ui\\/evil.example",
        "/oauth2/auth",
        "",
    ] {
        let mut f = Flow::default();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish();
        let page = f.get(&app, &format!("/ui/login?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{next:?}: {}", page.text());
        assert_eq!(hidden(&page.text(), "next"), "/ui/apps", "{next:?}");
        let res = f
            .post(
                &app,
                "/ui/login",
                &[
                    ("csrf_token", &hidden(&page.text(), "csrf_token")),
                    ("email", "alice@acme.test"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&res), "/ui/apps", "{next:?}");
        assert!(res.header("injected").is_none());
    }
    // A usable one is followed, with its query.
    let mut f = Flow::default();
    let page = f.get(&app, "/ui/login").await;
    let res = f
        .post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", &hidden(&page.text(), "csrf_token")),
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
                ("next", "/ui/developer?account=acme"),
            ],
        )
        .await;
    assert_eq!(location(&res), "/ui/developer?account=acme");
}

engine_test!(the_consent_challenge_survives_a_login_on_the_way_to_the_consent_page);
async fn the_consent_challenge_survives_a_login_on_the_way_to_the_consent_page(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let mut body = app_body();
    body["app_type"] = json!("native");
    body["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
    let created = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    let id = created.json()["client_id"].as_str().expect("id").to_owned();
    let (_, cc, _) = to_consent(&app, &id, "alice@acme.test").await;

    // The consent page, reached in a browser without a console session.
    let mut f = Flow::default();
    let consent = format!("/ui/consent?consent_challenge={cc}");
    let login = location(&f.get(&app, &consent).await);
    assert!(login.starts_with("/ui/login?next="), "{login}");
    let page = f.get(&app, &login).await;
    assert_eq!(hidden(&page.text(), "next"), consent, "the page keeps it");
    let res = f
        .post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", &hidden(&page.text(), "csrf_token")),
                ("email", "alice@acme.test"),
                ("password", PASSWORD),
                ("next", &hidden(&page.text(), "next")),
            ],
        )
        .await;
    assert_eq!(location(&res), consent, "back to the consent page");
    let page = f.get(&app, &consent).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_eq!(hidden(&page.text(), "consent_challenge"), cc);
    let res = f
        .post(
            &app,
            "/ui/consent",
            &[
                ("consent_challenge", cc.as_str()),
                ("csrf_token", &hidden(&page.text(), "csrf_token")),
                ("decision", "allow"),
                ("account", "acme"),
            ],
        )
        .await;
    assert!(
        location(&res).contains("consent_verifier="),
        "the authorization goes on"
    );
}

/// A console page `path` as `s` sees it (200 expected): its HTML.
pub(crate) async fn get_page(app: &TestApp, s: &Session, path: &str) -> String {
    let req = Request::get(path)
        .header(header::COOKIE, &s.cookie)
        .body(Body::empty())
        .expect("request");
    let res = TestApp::call(&app.public, req).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.text()
}

engine_test!(a_valid_login_does_not_reset_the_backoff_of_its_address);
/// An address that guesses at other users' passwords cannot clear its own backoff with a valid
/// login of its own: the login gives back only the attempt it counted.
async fn a_valid_login_does_not_reset_the_backoff_of_its_address(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let p = &app.state.platform;
    let address = Some(IpAddr::from([203, 0, 113, 9]));
    for i in 0..IP_FREE_FAILURES - 1 {
        let wrong = p
            .authenticate(
                &format!("user{i}@acme.test"),
                SecretString::new("wrong password"),
                address,
            )
            .await;
        assert!(
            matches!(wrong, Err(PlatformError::BadCredentials)),
            "{wrong:?}"
        );
    }
    p.authenticate("alice@acme.test", SecretString::new(PASSWORD), address)
        .await
        .expect("a valid login");
    let last = p
        .authenticate("user-last@acme.test", SecretString::new("wrong"), address)
        .await;
    assert!(
        matches!(last, Err(PlatformError::BadCredentials)),
        "{last:?}"
    );
    let next = p
        .authenticate("alice@acme.test", SecretString::new(PASSWORD), address)
        .await;
    assert!(
        matches!(next, Err(PlatformError::Throttled { .. })),
        "{next:?}"
    );
}
