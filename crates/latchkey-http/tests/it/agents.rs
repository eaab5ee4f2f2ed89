//! What AI agents speak: resource indicators (RFC 8707), the self-service API as a protected
//! resource (RFC 9728), dynamic client registration (RFC 7591/7592), clients named by their
//! metadata document, and discovery for issuers with a path. Every refusal changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::client::{CimdError, MetadataDocument, MetadataDocumentFetcher};
use latchkey_core::clock::Clock as _;
use latchkey_core::config::{Config, ResourceConfig};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{Browser, FlowOptions, REDIRECT, Registered, auth_url, pkce, query, run_flow};
use crate::support::{Answer, ISSUER, TestApp, engine_test};

const MCP: &str = "https://mcp.example.test/mcp";
const API: &str = "https://auth.example.test/api/v1";

fn with_resources(c: &mut Config) {
    c.resources.push(ResourceConfig {
        uri: MCP.into(),
        name: "Example MCP server".into(),
        scopes: vec!["dns.read".into(), "dns.write".into()],
    });
    c.oauth2.dynamic_client_registration.enabled = true;
}

async fn app(db: TestDatabase) -> TestApp {
    TestApp::configured(db, with_resources).await
}

/// An authorization of `client` through the admin API's login and consent, with `extra`
/// parameters, granting what was requested: the token response.
async fn authorized(
    app: &TestApp,
    client: &Registered,
    scope: &'static str,
    extra: &[(&'static str, &str)],
) -> Value {
    let p = pkce(3);
    let o = FlowOptions {
        scope,
        extra: extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        consent: json!({
            "grant_scope": scope.split(' ').filter(|s| *s != "profile").collect::<Vec<_>>(),
            "grant_access_token_audience": extra.iter().filter(|(k, _)| *k == "resource").map(|(_, v)| *v).collect::<Vec<_>>(),
        }),
        ..FlowOptions::default()
    };
    let callback = run_flow(app, &mut Browser::default(), &client.id, &p, &o).await;
    let code = query(&callback)["code"].clone();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", p.verifier.as_str()),
    ];
    form.extend(extra.iter().filter(|(k, _)| *k == "resource").copied());
    let res = app.token(client, &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

engine_test!(a_resource_binds_the_token_audience_and_a_refresh_narrows_only);
async fn a_resource_binds_the_token_audience_and_a_refresh_narrows_only(db: TestDatabase) {
    let app = app(db).await;
    let client = app.web_client().await;
    let tokens = authorized(
        &app,
        &client,
        "openid offline_access dns.read",
        &[("resource", MCP)],
    )
    .await;
    let at = tokens["access_token"].as_str().expect("at");
    let i = app.introspect(at).await;
    assert_eq!(i["aud"], json!([MCP]), "{i}");
    assert_eq!(i["scope"], "openid offline_access dns.read");

    // The consent request showed the resource; the grant records it.
    let sessions = app
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=alice",
            None,
        )
        .await;
    let s = &sessions.json()[0];
    assert_eq!(
        s["consent_request"]["requested_access_token_audience"],
        json!([MCP]),
        "{s}"
    );
    assert_eq!(s["grant_access_token_audience"], json!([MCP]));

    // A refresh for a resource outside the grant is refused and changes nothing.
    let rt = tokens["refresh_token"].as_str().expect("rt");
    let before = app.count("refresh_tokens").await;
    for other in ["https://other.example.test/mcp", API] {
        let res = app
            .token(
                &client,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt),
                    ("resource", other),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
        assert_eq!(res.json()["error"], "invalid_target");
    }
    for bad in ["/relative", "https://mcp.example.test/mcp#frag"] {
        let res = app
            .token(
                &client,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt),
                    ("resource", bad),
                ],
            )
            .await;
        assert_eq!(res.json()["error"], "invalid_target", "{bad}");
    }
    assert_eq!(app.count("refresh_tokens").await, before);

    // The granted resource, asked again, works: the refresh token was not spent.
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("resource", MCP),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let i = app
        .introspect(res.json()["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(i["aud"], json!([MCP]));
}

engine_test!(bad_resources_on_the_authorization_request_are_invalid_target_and_store_nothing);
async fn bad_resources_on_the_authorization_request_are_invalid_target_and_store_nothing(
    db: TestDatabase,
) {
    let app = app(db).await;
    let client = app.web_client().await;
    let flows = app.count("flows").await;
    for bad in [
        "https://mcp.example.test/mcp#fragment",
        "mcp",
        "/mcp",
        "https://unknown.example.test/mcp",
    ] {
        let res = app
            .get_public(&auth_url(&client.id, &[("resource", bad)]))
            .await;
        assert_eq!(res.status, StatusCode::FOUND, "{bad}: {}", res.text());
        let to = res.header("location").expect("location");
        assert!(to.starts_with(REDIRECT), "{to}");
        assert_eq!(query(to)["error"], "invalid_target", "{bad}");
        assert_eq!(query(to)["state"], "s-1");
    }
    // Repeated resources are allowed (RFC 8707 §2); another repeated parameter is not.
    let url = format!(
        "{}&resource={}&resource={}",
        auth_url(&client.id, &[]),
        MCP,
        API
    );
    let res = app.get_public(&url).await;
    assert!(
        res.header("location")
            .expect("location")
            .contains("login_challenge"),
        "{}",
        res.text()
    );
    assert_eq!(app.count("flows").await, flows + 1);
}

engine_test!(client_credentials_get_the_resource_audience_and_its_scopes_only);
async fn client_credentials_get_the_resource_audience_and_its_scopes_only(db: TestDatabase) {
    let app = app(db).await;
    let svc = app
        .register(json!({
            "client_name": "Service",
            "grant_types": ["client_credentials"],
            "scope": "dns.read apps.write",
            "access_token_strategy": "jwt",
        }))
        .await;
    let res = app
        .token(
            &svc,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "dns.read apps.write"),
                ("resource", MCP),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["scope"], "dns.read");
    let claims = jwt_claims(body["access_token"].as_str().expect("at"));
    assert_eq!(claims["aud"], json!([MCP]), "{claims}");
    let i = app
        .introspect(body["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(i["aud"], json!([MCP]));

    let before = app.count("access_tokens").await;
    let res = app
        .token(
            &svc,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://nope.example.test/"),
            ],
        )
        .await;
    assert_eq!(res.json()["error"], "invalid_target", "{}", res.text());
    assert_eq!(app.count("access_tokens").await, before);
}

engine_test!(the_api_is_a_protected_resource_with_metadata_and_challenges);
async fn the_api_is_a_protected_resource_with_metadata_and_challenges(db: TestDatabase) {
    let app = app(db).await;
    let prm = app
        .get_public("/.well-known/oauth-protected-resource/api/v1")
        .await;
    assert_eq!(prm.status, StatusCode::OK);
    let m = prm.json();
    assert_eq!(m["resource"], API);
    assert_eq!(m["authorization_servers"], json!([ISSUER]));
    assert_eq!(m["scopes_supported"], json!(["apps.write"]));
    assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    assert_eq!(
        app.get_public("/.well-known/oauth-protected-resource/api/v2")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let call = |token: Option<String>| {
        let mut req = Request::get("/api/v1/accounts/acme/apps");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        TestApp::call(&app.public, req.body(Body::empty()).expect("req"))
    };
    let res = call(None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let challenge = res.header("www-authenticate").expect("challenge");
    assert!(
        challenge.contains(r#"resource_metadata="https://auth.example.test/.well-known/oauth-protected-resource/api/v1""#),
        "{challenge}"
    );

    // A valid token without apps.write: 403 naming the scope.
    let svc = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read apps.write", "audience": ["https://api.example.test"]}))
        .await;
    let token = |form: &'static [(&'static str, &'static str)]| {
        let app = &app;
        let svc = &svc;
        async move {
            let res = app.token(svc, form).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.text());
            res.json()["access_token"].as_str().expect("at").to_owned()
        }
    };
    let res = call(Some(
        token(&[("grant_type", "client_credentials"), ("scope", "dns.read")]).await,
    ))
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert_eq!(res.json()["error"], "insufficient_scope");
    let challenge = res.header("www-authenticate").expect("challenge");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="apps.write""#), "{challenge}");

    // A token issued for another resource is not for this API.
    let res = call(Some(
        token(&[
            ("grant_type", "client_credentials"),
            ("scope", "apps.write"),
            ("audience", "https://api.example.test"),
        ])
        .await,
    ))
    .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
}

engine_test!(discovery_names_what_mcp_clients_need_and_resources_are_listed);
async fn discovery_names_what_mcp_clients_need_and_resources_are_listed(db: TestDatabase) {
    let app = app(db).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let d = app.get_public(path).await.json();
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d["client_id_metadata_document_supported"], true);
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            d["registration_endpoint"],
            format!("{ISSUER}/oauth2/register")
        );
    }
    let r = app.admin(Method::GET, "/admin/resources", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    assert_eq!(list[0]["uri"], API);
    assert_eq!(
        list[1],
        json!({"uri": MCP, "name": "Example MCP server", "scopes": ["dns.read", "dns.write"]})
    );

    // Registration is off by default: no endpoint, and the path answers 404.
    let plain = TestApp::new(TestDatabase::sqlite()).await;
    let d = plain
        .get_public("/.well-known/openid-configuration")
        .await
        .json();
    assert!(d.get("registration_endpoint").is_none(), "{d}");
    let res = register(
        &plain,
        json!({"redirect_uris": ["http://127.0.0.1:3000/cb"]}),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
}

engine_test!(an_issuer_with_a_path_is_found_at_every_url_mcp_clients_try);
async fn an_issuer_with_a_path_is_found_at_every_url_mcp_clients_try(db: TestDatabase) {
    let issuer = "https://auth.example.test/t1";
    let app = TestApp::with_issuer(db, issuer, with_resources).await;
    for path in [
        "/.well-known/oauth-authorization-server/t1",
        "/.well-known/openid-configuration/t1",
        "/t1/.well-known/openid-configuration",
        "/t1/.well-known/oauth-authorization-server",
    ] {
        let res = app.get_public(path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        let d = res.json();
        assert_eq!(d["issuer"], issuer, "{path}");
        assert_eq!(d["token_endpoint"], format!("{issuer}/oauth2/token"));
    }
    assert_eq!(
        app.get_public("/.well-known/oauth-authorization-server/t2")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let prm = app
        .get_public("/.well-known/oauth-protected-resource/t1/api/v1")
        .await;
    assert_eq!(prm.json()["resource"], format!("{issuer}/api/v1"));
    // The endpoints answer under the issuer's path.
    let jwks = app.get_public("/t1/.well-known/jwks.json").await;
    assert_eq!(jwks.status, StatusCode::OK);
}

async fn register(app: &TestApp, body: Value) -> Answer {
    let req = Request::post("/oauth2/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("req");
    TestApp::call(&app.public, req).await
}

async fn manage(
    app: &TestApp,
    method: Method,
    id: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/oauth2/register/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    TestApp::call(&app.public, req.body(body).expect("req")).await
}

engine_test!(a_client_registers_itself_and_manages_its_registration);
async fn a_client_registers_itself_and_manages_its_registration(db: TestDatabase) {
    let app = app(db).await;
    // What the MCP SDK sends: loopback redirects, no application_type, a public client.
    let res = register(
        &app,
        json!({
            "redirect_uris": ["http://127.0.0.1:3000/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "My MCP client",
            "scope": "openid offline_access dns.write",
            "software_id": "mcp-inspector",
        }),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let r = res.json();
    assert_eq!(
        r["redirect_uris"],
        json!(["http://127.0.0.1:3000/callback"])
    );
    assert_eq!(r["application_type"], "native");
    assert_eq!(r["token_endpoint_auth_method"], "none");
    assert!(r.get("client_secret").is_none());
    assert!(r["client_id_issued_at"].is_i64());
    assert_eq!(r["client_secret_expires_at"], 0);
    // Nobody vouches for it: it gets what any unverified client may have.
    assert_eq!(r["scope"], "openid offline_access");
    assert!(r.get("logo_uri").is_none(), "no empty URL fields: {r}");
    let id = r["client_id"].as_str().expect("id").to_owned();
    let token = r["registration_access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        r["registration_client_uri"],
        format!("{ISSUER}/oauth2/register/{id}")
    );
    let stored = app.state.clients.get(&id).await.expect("stored");
    assert_eq!(stored.origin, latchkey_core::client::ClientOrigin::Dynamic);
    assert!(stored.owner_account_id.is_none());

    let read = manage(&app, Method::GET, &id, &token, None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.json().get("registration_access_token").is_none());

    // Another client's registration token opens nothing.
    let other = register(
        &app,
        json!({"redirect_uris": ["https://other.example.test/cb"], "client_name": "Other"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text());
    assert_eq!(other.json()["application_type"], "web");
    assert!(other.json()["client_secret"].is_string());
    let other_token = other.json()["registration_access_token"]
        .as_str()
        .expect("t")
        .to_owned();
    for (m, body) in [
        (Method::GET, None),
        (
            Method::PUT,
            Some(json!({"redirect_uris": ["http://127.0.0.1:1/cb"]})),
        ),
        (Method::DELETE, None),
    ] {
        let res = manage(&app, m, &id, &other_token, body).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
        assert_eq!(res.json()["error"], "invalid_token");
    }
    assert_eq!(
        app.state.clients.get(&id).await.expect("kept").name,
        "My MCP client"
    );

    let put = manage(
        &app,
        Method::PUT,
        &id,
        &token,
        Some(json!({"client_id": id, "redirect_uris": ["http://127.0.0.1:3001/callback"], "token_endpoint_auth_method": "none", "client_name": "Renamed"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(put.json()["client_name"], "Renamed");
    assert_eq!(
        put.json()["redirect_uris"],
        json!(["http://127.0.0.1:3001/callback"])
    );

    let del = manage(&app, Method::DELETE, &id, &token, None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    // A registration deleted is a client deleted, in the revocation log like any other.
    let log = app
        .admin(Method::GET, "/admin/revocations", None)
        .await
        .json();
    let entries = log["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "client_deleted" && e["client_id"] == id.as_str()),
        "{log}"
    );
    assert_eq!(
        manage(&app, Method::GET, &id, &token, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

engine_test!(bad_registrations_are_refused_and_register_nothing);
async fn bad_registrations_are_refused_and_register_nothing(db: TestDatabase) {
    let app = app(db).await;
    let before = app.count("clients").await;
    let long = "x".repeat(300);
    for (body, error) in [
        (
            json!({"redirect_uris": ["https://app.example.test/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript://x/%0Aalert(1)"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://app.example.test/cb"], "client_name": long}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example.test/cb"], "client_secret": "mine"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example.test/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example.test/cb"], "application_type": "native"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example.test/cb"], "application_type": "toaster"}),
            "invalid_client_metadata",
        ),
    ] {
        let res = register(&app, body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            res.text()
        );
        assert_eq!(res.json()["error"], error, "{body}");
    }
    assert_eq!(app.count("clients").await, before);
}

engine_test!(a_registered_client_gets_a_resource_bound_token_with_pkce);
async fn a_registered_client_gets_a_resource_bound_token_with_pkce(db: TestDatabase) {
    let app = app(db).await;
    let r = register(
        &app,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "scope": "openid offline_access"}),
    )
    .await
    .json();
    let id = r["client_id"].as_str().expect("id");
    let p = pkce(5);
    let o = FlowOptions {
        scope: "openid offline_access",
        extra: vec![("resource", MCP.to_owned())],
        consent: json!({"grant_scope": ["openid", "offline_access"], "grant_access_token_audience": [MCP]}),
        ..FlowOptions::default()
    };
    let callback = run_flow(&app, &mut Browser::default(), id, &p, &o).await;
    let code = query(&callback)["code"].clone();
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", id),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &p.verifier),
                ("resource", MCP),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let i = app
        .introspect(res.json()["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(i["aud"], json!([MCP]));
    assert_eq!(i["client_id"], id);
}

/// A fetcher that serves one document (or a refusal) per URL and counts its calls.
#[derive(Debug, Default)]
struct FakeDocuments {
    documents:
        std::sync::Mutex<std::collections::HashMap<String, Result<MetadataDocument, CimdError>>>,
    calls: AtomicUsize,
}

impl FakeDocuments {
    fn serve(&self, url: &str, document: Result<MetadataDocument, CimdError>) {
        self.documents
            .lock()
            .expect("lock")
            .insert(url.to_owned(), document);
    }
}

#[async_trait::async_trait]
impl MetadataDocumentFetcher for FakeDocuments {
    async fn fetch(&self, url: &url::Url) -> Result<Arc<MetadataDocument>, CimdError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.documents
            .lock()
            .expect("lock")
            .get(url.as_str())
            .cloned()
            .unwrap_or(Err(CimdError::Status(404)))
            .map(Arc::new)
    }
}

const AGENT: &str = "https://agent.example.test/oauth/client.json";

fn agent_document(name: &str) -> MetadataDocument {
    document_at(AGENT, name)
}

fn document_at(at: &str, name: &str) -> MetadataDocument {
    let url = url::Url::parse(at).expect("url");
    latchkey_core::client::parse_document(
        &url,
        json!({
            "client_id": at,
            "client_name": name,
            "redirect_uris": [REDIRECT, "http://127.0.0.1:9999/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid offline_access dns.read dns.write",
        })
        .to_string()
        .as_bytes(),
    )
    .expect("a valid document")
}

engine_test!(a_client_named_by_its_metadata_document_is_kept_as_the_document_says);
async fn a_client_named_by_its_metadata_document_is_kept_as_the_document_says(db: TestDatabase) {
    let app = app(db).await;
    let fake = Arc::new(FakeDocuments::default());
    fake.serve(AGENT, Ok(agent_document("Agent")));
    app.state.engine.install_document_fetcher(fake.clone());

    let res = app
        .get_public(&auth_url(AGENT, &[("scope", "openid offline_access")]))
        .await;
    assert!(
        res.header("location")
            .expect("to login")
            .contains("login_challenge"),
        "{}",
        res.text()
    );
    let client = app.state.clients.get(AGENT).await.expect("kept");
    assert_eq!(
        client.origin,
        latchkey_core::client::ClientOrigin::MetadataDocument
    );
    assert_eq!(client.name, "Agent");
    // Without a platform, an unvouched client may hold the OpenID Connect scopes only.
    assert_eq!(client.scope.to_string(), "openid offline_access");

    // The document changed: the client follows it.
    fake.serve(AGENT, Ok(agent_document("Agent 2")));
    app.get_public(&auth_url(AGENT, &[("scope", "openid")]))
        .await;
    assert_eq!(
        app.state.clients.get(AGENT).await.expect("kept").name,
        "Agent 2"
    );

    // A refused document, or a refused URL, is shown, never redirected, and stores nothing.
    fake.serve(AGENT, Err(CimdError::ClientIdMismatch));
    let flows = app.count("flows").await;
    let res = app.get_public(&auth_url(AGENT, &[])).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert!(
        res.text().contains("does not match its URL"),
        "{}",
        res.text()
    );
    let calls = fake.calls.load(Ordering::SeqCst);
    for bad in [
        "https://user:pw@agent.example.test/client.json",
        "https://agent.example.test/client.json#x",
        "https://agent.example.test/a/../client.json",
        "http://agent.example.test/client.json",
    ] {
        let res = app.get_public(&auth_url(bad, &[])).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.text());
        assert!(res.header("location").is_none());
    }
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        calls,
        "a refused URL is never fetched"
    );
    assert_eq!(app.count("flows").await, flows);
    assert!(
        app.state
            .clients
            .get("https://agent.example.test/client.json")
            .await
            .is_err()
    );
}

engine_test!(the_janitor_removes_registrations_never_used_and_keeps_used_ones);
async fn the_janitor_removes_registrations_never_used_and_keeps_used_ones(db: TestDatabase) {
    let app = app(db).await;
    let body = json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "scope": "openid offline_access"});
    let unused = register(&app, body.clone()).await.json();
    let used = register(&app, body).await.json();
    let used_id = used["client_id"].as_str().expect("id");
    let p = pkce(6);
    let o = FlowOptions {
        scope: "openid offline_access",
        consent: json!({"grant_scope": ["openid", "offline_access"]}),
        ..FlowOptions::default()
    };
    run_flow(&app, &mut Browser::default(), used_id, &p, &o).await;

    let policy = latchkey_core::janitor::JanitorPolicy {
        batch: 10,
        refresh_window: 30,
        revocation_retention: 30 * 86_400,
        registration_ttl: 86_400,
    };
    let deps = app.state.engine.deps();
    // Within the time a registration gets to be used, both stay.
    let report = latchkey_core::janitor::run_with(deps, &policy)
        .await
        .expect("janitor");
    assert_eq!(report.unused_registrations, 0);
    app.clock.advance(86_400 + 1);
    let dry = latchkey_core::janitor::dry_run(deps, &policy)
        .await
        .expect("dry run");
    assert_eq!(dry.unused_registrations, 1);
    let report = latchkey_core::janitor::run_with(deps, &policy)
        .await
        .expect("janitor");
    assert_eq!(report.unused_registrations, 1);
    assert!(
        app.state
            .clients
            .get(unused["client_id"].as_str().expect("id"))
            .await
            .is_err()
    );
    assert!(
        app.state.clients.get(used_id).await.is_ok(),
        "a used registration stays"
    );
}

engine_test!(
    external_clients_are_unverified_held_to_the_catalog_and_blocked_where_third_parties_are
);
async fn external_clients_are_unverified_held_to_the_catalog_and_blocked_where_third_parties_are(
    db: TestDatabase,
) {
    const TRUSTED: &str = "https://trusted.example.test/client.json";
    let app = TestApp::platform_configured(db, |c| {
        with_resources(c);
        c.oauth2.client_id_metadata_documents.trusted_hosts = vec!["trusted.example.test".into()];
    })
    .await;
    crate::platform::world(&app).await;
    let fake = Arc::new(FakeDocuments::default());
    fake.serve(AGENT, Ok(agent_document("Agent")));
    fake.serve(TRUSTED, Ok(document_at(TRUSTED, "Trusted agent")));
    app.state.engine.install_document_fetcher(fake);

    // Both ask for dns.read and the sensitive dns.write: only the trusted host gets dns.write.
    let (mut flow, challenge, _) =
        crate::platform::to_consent_for(&app, AGENT, "alice@acme.test", "openid dns.read").await;
    let stored = app.state.clients.get(AGENT).await.expect("kept");
    assert_eq!(stored.scope.to_string(), "openid offline_access dns.read");
    let html = flow
        .get(
            &app,
            &format!("/ui/consent?consent_challenge={challenge}&proceed=1"),
        )
        .await
        .text();
    assert!(
        html.contains("agent.example.test</span> wants to access"),
        "{html}"
    );
    assert!(html.contains("It calls itself “Agent”"), "{html}");
    crate::platform::to_consent_for(&app, TRUSTED, "alice@acme.test", "openid dns.write").await;
    assert!(
        app.state
            .clients
            .get(TRUSTED)
            .await
            .expect("kept")
            .scope
            .contains("dns.write")
    );

    // An account that blocks third-party apps blocks them too.
    let mut tx = latchkey_core::store::Store::begin(&app.store)
        .await
        .expect("tx");
    tx.accounts()
        .set_block_third_party_apps("acme", true, app.clock.now())
        .await
        .expect("block");
    tx.commit().await.expect("commit");
    let (mut flow, challenge, _) =
        crate::platform::to_consent_for(&app, AGENT, "alice@acme.test", "openid dns.read").await;
    let html = flow
        .get(
            &app,
            &format!("/ui/consent?consent_challenge={challenge}&proceed=1"),
        )
        .await
        .text();
    assert!(html.contains("do not allow third-party apps"), "{html}");
}

engine_test!(registrations_are_limited_per_address);
async fn registrations_are_limited_per_address(db: TestDatabase) {
    let app = TestApp::configured(db, |c| {
        with_resources(c);
        c.rate_limits.enabled = true;
        c.rate_limits.register_per_ip = 2;
    })
    .await;
    let body = json!({"redirect_uris": ["http://127.0.0.1:3000/cb"], "token_endpoint_auth_method": "none"});
    let first = register(&app, body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let clients = app.count("clients").await;
    let mut refused = 0;
    for _ in 0..3 {
        let res = register(&app, body.clone()).await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.header("retry-after").is_some());
            refused += 1;
        }
    }
    assert!(refused >= 2, "over the limit, registrations are refused");
    assert!(app.count("clients").await <= clients + 1);
}
