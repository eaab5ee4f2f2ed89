//! A browser and a login/consent app, driving the authorization flow in-process.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::support::{Answer, TestApp};

/// A cookie jar and a history, for one user agent.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, res: &Answer) {
        for v in res.headers.get_all(header::SET_COOKIE) {
            let c = cookie::Cookie::parse(v.to_str().expect("ascii").to_owned()).expect("cookie");
            if c.max_age().is_some_and(|a| a.is_zero() || a.is_negative()) || c.value().is_empty() {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    /// GETs a path of the public listener (a full issuer URL is reduced to its path).
    pub async fn get(&mut self, app: &TestApp, url: &str) -> Answer {
        let path = url.strip_prefix(crate::support::ISSUER).unwrap_or(url);
        let req = Request::get(path)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .expect("request");
        let res = TestApp::call(&app.public, req).await;
        self.remember(&res);
        res
    }
}

pub fn location(res: &Answer) -> String {
    assert!(
        res.status.is_redirection(),
        "expected a redirect, got {}: {}",
        res.status,
        res.text()
    );
    res.header("location").expect("location").to_owned()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> BTreeMap<String, String> {
    let parsed = url::Url::parse(url).expect("absolute URL");
    parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce(seed: u8) -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode([seed; 40]);
    let challenge = URL_SAFE_NO_PAD.encode(latchkey_core::crypto::sha256(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

pub struct Registered {
    pub id: String,
    pub secret: Option<String>,
}

pub const REDIRECT: &str = "https://app.example.test/callback";

impl TestApp {
    /// Registers a client through the admin API.
    pub async fn register(&self, body: Value) -> Registered {
        let res = self.admin(Method::POST, "/admin/clients", Some(body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let c = res.json();
        Registered {
            id: c["client_id"].as_str().expect("id").into(),
            secret: c["client_secret"].as_str().map(Into::into),
        }
    }

    /// A confidential web client with offline access.
    pub async fn web_client(&self) -> Registered {
        self.register(json!({
            "client_name": "Web App",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access profile dns.read dns.write",
            "audience": ["https://api.example.test"],
        }))
        .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> Answer {
        let body = serde_urlencoded::to_string(form).expect("form");
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            req = req.header(
                header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
            );
        }
        let req = req.body(Body::from(body)).expect("request");
        let router = if path.starts_with("/admin") {
            &self.admin
        } else {
            &self.public
        };
        TestApp::call(router, req).await
    }

    pub async fn token(&self, client: &Registered, form: &[(&str, &str)]) -> Answer {
        self.post_form(
            "/oauth2/token",
            Some((&client.id, client.secret.as_deref().unwrap_or_default())),
            form,
        )
        .await
    }

    /// Redeems an authorization code issued for [`REDIRECT`], with its PKCE verifier.
    pub async fn redeem(&self, client: &Registered, code: &str, verifier: &str) -> Answer {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let res = self
            .post_form("/admin/oauth2/introspect", None, &[("token", token)])
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        res.json()
    }
}

/// What the login/consent app does, step by step.
pub struct FlowOptions {
    pub scope: &'static str,
    pub subject: &'static str,
    pub remember: bool,
    pub extra: Vec<(&'static str, String)>,
    pub consent: Value,
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            scope: "openid offline_access dns.read",
            subject: "alice",
            remember: false,
            extra: vec![],
            consent: json!({"grant_scope": ["openid", "offline_access", "dns.read"], "session": {"id_token": {"email": "alice@example.test"}, "access_token": {"tier": "gold"}}}),
        }
    }
}

pub fn authorize_url(client_id: &str, pkce: &Pkce, o: &FlowOptions) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", o.scope)
        .append_pair("state", "state-123456")
        .append_pair("nonce", "nonce-abcdef")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in &o.extra {
        q.append_pair(k, v);
    }
    format!("/oauth2/auth?{}", q.finish())
}

/// An authorization request with `params` replacing or adding to a valid one.
pub fn auth_url(client_id: &str, params: &[(&str, &str)]) -> String {
    let p = pkce(9);
    let mut base: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id.into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("scope".into(), "openid dns.read".into()),
        ("state".into(), "s-1".into()),
        ("code_challenge".into(), p.challenge),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in params {
        if let Some(slot) = base.iter_mut().find(|(bk, _)| bk == k) {
            (*v).clone_into(&mut slot.1);
        } else {
            base.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &base {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    format!("/oauth2/auth?{}", q.finish())
}

/// Runs the browser through login and consent and returns the client's callback URL.
pub async fn run_flow(
    app: &TestApp,
    browser: &mut Browser,
    client_id: &str,
    pkce: &Pkce,
    o: &FlowOptions,
) -> String {
    let res = browser.get(app, &authorize_url(client_id, pkce, o)).await;
    let to_login = location(&res);
    assert!(to_login.contains("login_challenge="), "{to_login}");
    let challenge = query(&to_login)["login_challenge"].clone();
    let login = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={challenge}"),
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let body = json!({"subject": o.subject, "remember": o.remember, "remember_for": 3600, "acr": "1", "amr": ["pwd"]});
    let accepted = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}"),
            Some(body),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let res = browser
        .get(
            app,
            accepted.json()["redirect_to"]
                .as_str()
                .expect("redirect_to"),
        )
        .await;
    let to_consent = location(&res);
    if !to_consent.contains("consent_challenge=") {
        return to_consent;
    }
    let challenge = query(&to_consent)["consent_challenge"].clone();
    let consent = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/consent?consent_challenge={challenge}"),
            None,
        )
        .await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    let accepted = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/consent/accept?consent_challenge={challenge}"),
            Some(o.consent.clone()),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let res = browser
        .get(
            app,
            accepted.json()["redirect_to"]
                .as_str()
                .expect("redirect_to"),
        )
        .await;
    location(&res)
}
