//! The OpenAPI descriptions are served, and hold every route of their router with exactly the
//! methods it answers: a path or method the router has and the description lacks (or the other
//! way round) fails here. Schemathesis (`scripts/schemathesis`) checks the rest against a
//! running server.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use latchkey_store::testing::TestDatabase;
use latchkey_types::routes::{admin, fill, public};
use serde_json::Value;

use crate::support::{TestApp, engine_test};

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The fallback's answer to a path no route matches.
const NO_ROUTE: &str = "The requested resource could not be found.";

async fn check(router: &Router, spec: &Value, routes: &[&str], prefix: &str) {
    assert_eq!(spec["openapi"], "3.0.3");
    let paths = spec["paths"].as_object().expect("paths");
    let described: BTreeSet<&str> = paths
        .keys()
        .map(String::as_str)
        .filter(|p| p.starts_with(prefix))
        .collect();
    let routed: BTreeSet<&str> = routes.iter().copied().collect();
    assert_eq!(described, routed, "described paths differ from the routes");
    for path in routed {
        let args = ["x"; 4];
        let uri = fill(path, &args);
        for method in METHODS {
            let documented = paths[path]
                .get(method.as_str().to_ascii_lowercase())
                .is_some();
            let req = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .body(Body::empty())
                .expect("request");
            let res = TestApp::call(router, req).await;
            let fallback = res.status == StatusCode::METHOD_NOT_ALLOWED
                || (res.status == StatusCode::NOT_FOUND && res.text().contains(NO_ROUTE));
            assert_eq!(
                !fallback,
                documented,
                "{method} {path}: answered {} ({}), documented: {documented}",
                res.status,
                res.text()
            );
        }
    }
}

engine_test!(the_admin_description_is_served_and_matches_the_router);
async fn the_admin_description_is_served_and_matches_the_router(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let res = app.admin(Method::GET, admin::OPENAPI, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), Some("application/json"));
    check(&app.admin, &res.json(), admin::ALL, "/admin/").await;
}

engine_test!(the_self_service_description_is_served_and_matches_the_router);
async fn the_self_service_description_is_served_and_matches_the_router(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let res = app.get_public(public::API_OPENAPI).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), Some("application/json"));
    check(&app.public, &res.json(), public::API_ALL, "/api/v1/").await;
}
