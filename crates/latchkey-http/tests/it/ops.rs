use axum::http::{Method, StatusCode};
use latchkey_store::testing::TestDatabase;

use crate::support::{ISSUER, TestApp, engine_test};

engine_test!(discovery_is_generated_from_routes_and_keys);
async fn discovery_is_generated_from_routes_and_keys(db: TestDatabase) {
    let app = TestApp::new(db).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = app.get_public(path).await;
        assert_eq!(res.status, StatusCode::OK);
        let doc = res.json();
        assert_eq!(doc["issuer"], ISSUER);
        assert_eq!(doc["token_endpoint"], format!("{ISSUER}/oauth2/token"));
        assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    }
    let jwks = app.get_public("/.well-known/jwks.json").await.json();
    let keys = jwks["keys"].as_array().expect("keys");
    let algs: Vec<&str> = keys
        .iter()
        .map(|k| k["alg"].as_str().expect("alg"))
        .collect();
    assert!(
        algs.contains(&"RS256") && algs.contains(&"ES256"),
        "{algs:?}"
    );
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "no private parts are published"
    );
}

engine_test!(health_version_and_metrics);
async fn health_version_and_metrics(db: TestDatabase) {
    let app = TestApp::new(db).await;
    assert_eq!(app.get_public("/health/alive").await.status, StatusCode::OK);
    assert_eq!(app.get_public("/health/ready").await.status, StatusCode::OK);
    let v = app.admin(Method::GET, "/admin/version", None).await.json();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let _ = app.admin(Method::GET, "/admin/clients", None).await;
    let metrics = app
        .admin(Method::GET, "/admin/metrics/prometheus", None)
        .await
        .text();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/admin/clients\""), "{metrics}");
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

engine_test!(readiness_fails_when_the_database_is_gone);
async fn readiness_fails_when_the_database_is_gone(db: TestDatabase) {
    let app = TestApp::new(db).await;
    app.store.close().await;
    let res = app.get_public("/health/ready").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.get_public("/health/alive").await.status, StatusCode::OK);
}

engine_test!(unknown_routes_answer_json_with_a_request_id);
async fn unknown_routes_answer_json_with_a_request_id(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let res = app.get_public("/nope").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.json()["error"], "not_found");
    assert!(res.header("x-request-id").is_some());
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    let res = app.admin(Method::POST, "/admin/version", None).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
}

engine_test!(the_admin_api_answers_without_its_prefix_as_hydra_does);
async fn the_admin_api_answers_without_its_prefix_as_hydra_does(db: TestDatabase) {
    let app = TestApp::new(db).await;
    for path in ["/health/alive", "/health/ready", "/version", "/clients"] {
        let res = app.admin(Method::GET, path, None).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
    }
    let keys = app
        .admin(Method::GET, "/admin/keys/hydra.openid.id-token", None)
        .await
        .json();
    assert!(
        keys["keys"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k["alg"] == "RS256"))
    );
    let at = app
        .admin(Method::GET, "/admin/keys/hydra.jwt.access-token", None)
        .await
        .json();
    assert!(
        at["keys"]
            .as_array()
            .is_some_and(|k| k.iter().all(|k| k["alg"] == "ES256"))
    );
    assert_eq!(
        app.admin(Method::GET, "/admin/keys/other", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
