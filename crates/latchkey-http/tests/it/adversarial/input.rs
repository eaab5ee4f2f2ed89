//! Input limits: oversized bodies and fields, deep JSON, repeated and malformed parameters. Each
//! is refused with a standard error and changes nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use super::{authorize, before, service, shown_not_redirected, unchanged};
use crate::support::{TestApp, engine_test};

engine_test!(an_oversized_token_request_body_is_refused);
async fn an_oversized_token_request_body_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let snapshot = before(&app).await;
    let padding = "x".repeat(200 * 1024);
    let res = app
        .token(
            &c,
            &[("grant_type", "client_credentials"), ("padding", &padding)],
        )
        .await;
    // The OAuth error of RFC 6749 §5.2, which every client understands.
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.status);
    assert_eq!(res.json()["error"], "invalid_request");
    assert!(res.text().contains("too large"), "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(deeply_nested_json_at_the_admin_api_is_refused);
async fn deeply_nested_json_at_the_admin_api_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let snapshot = before(&app).await;
    let mut metadata = json!("bottom");
    for _ in 0..64 {
        metadata = json!({ "n": metadata });
    }
    let res = app
        .admin(
            Method::POST,
            "/admin/clients",
            Some(json!({"client_name": "deep", "metadata": metadata})),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(duplicate_parameters_in_a_token_request_are_refused);
async fn duplicate_parameters_in_a_token_request_are_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let snapshot = before(&app).await;
    let res = app
        .token(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "dns.read"),
                ("scope", "dns.write"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");
    assert!(res.text().contains("more than once"), "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(an_oversized_parameter_is_refused);
async fn an_oversized_parameter_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    let long = "a".repeat(9000);
    shown_not_redirected(&app, &authorize(&c.id, &[("state", &long)])).await;
    shown_not_redirected(&app, &authorize(&c.id, &[("nonce", &long)])).await;
    let svc = service(&app).await;
    let snapshot2 = before(&app).await;
    let res = app
        .token(
            &svc,
            &[("grant_type", "client_credentials"), ("scope", &long)],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    unchanged(&app, &snapshot2).await;
    drop(snapshot);
}

engine_test!(a_token_request_that_is_not_a_form_is_refused);
async fn a_token_request_that_is_not_a_form_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let snapshot = before(&app).await;
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        c.id,
        c.secret.as_deref().unwrap_or_default()
    ));
    for (ct, body) in [
        ("application/json", r#"{"grant_type":"client_credentials"}"#),
        ("text/plain", "grant_type=client_credentials"),
    ] {
        let req = Request::post("/oauth2/token")
            .header(header::CONTENT_TYPE, ct)
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .body(Body::from(body))
            .expect("req");
        let res = TestApp::call(&app.public, req).await;
        assert!(res.status.is_client_error(), "{ct}: {}", res.status);
        assert!(res.json().get("access_token").is_none());
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(malformed_percent_encoding_and_control_characters_are_refused);
async fn malformed_percent_encoding_and_control_characters_are_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    for tail in [
        "&nonce=%00abc",
        "&state=a%0d%0aSet-Cookie:x=1",
        "&state=%7F%7F",
    ] {
        let res = crate::browser::Browser::default()
            .get(
                &app,
                &format!("{}{tail}", authorize(&c.id, &[("state", "")])),
            )
            .await;
        // Refused: shown, or sent back to the client with an error; never on to login.
        let to = res.header("location").unwrap_or_default();
        assert!(
            res.status.is_client_error() || to.contains("error="),
            "{tail}: {} {to}",
            res.status
        );
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(an_oversized_client_registration_is_refused);
async fn an_oversized_client_registration_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let snapshot = before(&app).await;
    let many: Vec<String> = (0..500)
        .map(|i| format!("https://app{i}.example.test/callback"))
        .collect();
    for body in [
        json!({"client_name": "n".repeat(10_000)}),
        json!({"redirect_uris": many}),
        json!({"scope": "s ".repeat(5000)}),
    ] {
        let res = app.admin(Method::POST, "/admin/clients", Some(body)).await;
        assert!(res.status.is_client_error(), "{}", res.text());
    }
    unchanged(&app, &snapshot).await;
}
