//! The token endpoint authenticates clients from an in-process cache. These tests change a client
//! behind the back of a replica that has it cached — in the database directly, or through the
//! other replica — and check that the cached replica's answer changes at once.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::client::ClientStatus;
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use crate::browser::Registered;
use crate::support::{TestApp, engine_test};

const CC: [(&str, &str); 1] = [("grant_type", "client_credentials")];

engine_test!(a_cached_client_changed_elsewhere_is_refused_at_once);
async fn a_cached_client_changed_elsewhere_is_refused_at_once(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let replica = app.replica().await;
    let service = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read dns.write"}))
        .await;
    // Both replicas have the client cached.
    let mut tokens = Vec::new();
    for r in [&app, &replica] {
        let res = r.token(&service, &CC).await;
        assert_eq!(res.status, StatusCode::OK);
        tokens.push(
            res.json()["access_token"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    let token = tokens.pop().expect("a token");

    // Suspended in the database, without either replica's services: both refuse at once, at
    // the token endpoint and at introspection and revocation, which authenticate from the same
    // cache (introspection confirming on a reader, revocation in its transaction).
    replica
        .set_status_in_db(&service.id, ClientStatus::Suspended)
        .await;
    let secret = service.secret.as_deref().expect("secret");
    for r in [&app, &replica] {
        let res = r.token(&service, &CC).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
        assert_eq!(res.json()["error"], "invalid_client");
        for path in ["/oauth2/introspect", "/oauth2/revoke"] {
            let res = r
                .post_form(path, Some((&service.id, secret)), &[("token", &token)])
                .await;
            assert_eq!(
                res.status,
                StatusCode::UNAUTHORIZED,
                "{path}: {}",
                res.text()
            );
            assert_eq!(res.json()["error"], "invalid_client", "{path}");
        }
    }
    assert_eq!(
        app.introspect(&token).await["active"],
        false,
        "the client is suspended"
    );
    replica
        .set_status_in_db(&service.id, ClientStatus::Active)
        .await;
    assert_eq!(app.token(&service, &CC).await.status, StatusCode::OK);

    // The secret replaced in the database: the old one stops, the new one works, at once.
    let new_secret = "lk_cs_a-new-secret-set-behind-the-cache";
    replica.replace_secret_in_db(&service.id, new_secret).await;
    let res = app.token(&service, &CC).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    let renewed = Registered {
        id: service.id.clone(),
        secret: Some(new_secret.into()),
    };
    assert_eq!(app.token(&renewed, &CC).await.status, StatusCode::OK);

    // The scope narrowed through the other replica's admin API, a second later: the cached
    // replica refuses the removed scope at once.
    app.clock.advance(1);
    let res = replica
        .admin(
            Method::PUT,
            &format!("/admin/clients/{}", service.id),
            Some(json!({"grant_types": ["client_credentials"], "scope": "dns.read"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app.token(&renewed, &[CC[0], ("scope", "dns.write")]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_scope");

    // Deleted through the other replica: unknown at once.
    let res = replica
        .admin(
            Method::DELETE,
            &format!("/admin/clients/{}", service.id),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let res = app.token(&renewed, &CC).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
}

engine_test!(
    concurrent_client_credentials_tokens_are_all_stored,
    flavor = "multi_thread",
    worker_threads = 4
);
/// Tokens minted by many concurrent requests (committed together on SQLite) are all stored and
/// active.
async fn concurrent_client_credentials_tokens_are_all_stored(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let service = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let router = app.public.clone();
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                service.id,
                service.secret.as_deref().expect("secret")
            ))
        );
        tasks.push(tokio::spawn(async move {
            let req = Request::post("/oauth2/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, basic)
                .body(Body::from("grant_type=client_credentials"))
                .expect("request");
            let res = TestApp::call(&router, req).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.text());
            res.json()["access_token"]
                .as_str()
                .expect("access token")
                .to_owned()
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.expect("task"));
    }
    for t in &tokens {
        assert_eq!(app.introspect(t).await["active"], true);
    }
}
