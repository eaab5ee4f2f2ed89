//! Rate limits: per address on the OAuth endpoints, per client after authentication; 429 with
//! Retry-After. And the headers every public answer carries.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use crate::browser::{Browser, FlowOptions, authorize_url, pkce};
use crate::support::{TestApp, engine_test};

engine_test!(the_authorization_endpoint_is_limited_per_address);
async fn the_authorization_endpoint_is_limited_per_address(db: TestDatabase) {
    let app = TestApp::configured(db, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.authorize_per_ip = 10;
    })
    .await;
    let client = app.web_client().await;
    let url = authorize_url(&client.id, &pkce(1), &FlowOptions::default());
    assert!(
        Browser::default()
            .get(&app, &url)
            .await
            .status
            .is_redirection()
    );
    let res = Browser::default().get(&app, &url).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        res.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1))
    );
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert!(res.header("location").is_none());
}

engine_test!(the_token_endpoint_is_limited_per_client);
async fn the_token_endpoint_is_limited_per_client(db: TestDatabase) {
    let app = TestApp::configured(db, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.token_per_client = 10;
    })
    .await;
    let service = app
        .register(json!({"grant_types": ["client_credentials"]}))
        .await;
    let other = app
        .register(json!({"grant_types": ["client_credentials"]}))
        .await;
    assert_eq!(
        app.token(&service, &[("grant_type", "client_credentials")])
            .await
            .status,
        StatusCode::OK
    );
    let before = app.count("access_tokens").await;
    let res = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.json()["error"], "too_many_requests");
    assert!(res.header("retry-after").is_some());
    assert_eq!(
        app.count("access_tokens").await,
        before,
        "nothing was issued"
    );
    assert_eq!(
        app.token(&other, &[("grant_type", "client_credentials")])
            .await
            .status,
        StatusCode::OK,
        "per client"
    );
}

engine_test!(a_trusted_proxy_header_names_the_address);
async fn a_trusted_proxy_header_names_the_address(db: TestDatabase) {
    let app = TestApp::configured(db, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.userinfo_per_ip = 10;
    })
    .await;
    let state = app.state.clone().with_settings(|s| {
        s.client_ip_header = Some("x-forwarded-for".parse().expect("name"));
    });
    let router = latchkey_http::public_router(state);
    let call = |ip: &'static str| {
        let router = router.clone();
        async move {
            let req = Request::get("/userinfo")
                .header("x-forwarded-for", format!("{ip}, 10.0.0.1"))
                .body(Body::empty())
                .expect("req");
            TestApp::call(&router, req).await.status
        }
    };
    assert_eq!(call("203.0.113.7").await, StatusCode::UNAUTHORIZED);
    assert_eq!(call("203.0.113.7").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        call("203.0.113.8").await,
        StatusCode::UNAUTHORIZED,
        "another address has its own budget"
    );
}

engine_test!(public_answers_carry_security_headers);
async fn public_answers_carry_security_headers(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    for res in [
        app.get_public("/.well-known/openid-configuration").await,
        app.get_public("/oauth2/auth?client_id=nope").await,
        Browser::default()
            .get(
                &app,
                &authorize_url(&client.id, &pkce(1), &FlowOptions::default()),
            )
            .await,
        app.post_form(
            "/oauth2/token",
            None,
            &[("grant_type", "client_credentials")],
        )
        .await,
    ] {
        assert_eq!(
            res.header("strict-transport-security"),
            Some("max-age=31536000; includeSubDomains"),
            "https issuer"
        );
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert!(
            res.header("content-security-policy")
                .is_some_and(|c| c.contains("frame-ancestors 'none'"))
        );
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
        assert!(
            res.header("access-control-allow-origin").is_none()
                || res
                    .header("content-type")
                    .is_some_and(|c| c.contains("json"))
        );
    }
    let page = app.get_public("/oauth2/auth?client_id=nope").await;
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.header("access-control-allow-origin").is_none(),
        "no CORS on the authorization endpoint"
    );
}
