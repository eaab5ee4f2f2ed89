use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use latchkey_core::secret::SecretString;
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use crate::support::{TestApp, engine_test};

fn web_client() -> serde_json::Value {
    json!({
        "client_name": "Acme Dashboard",
        "redirect_uris": ["https://app.acme.test/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid offline_access dns.read",
    })
}

engine_test!(create_shows_the_secret_once_and_stores_only_its_hash);
async fn create_shows_the_secret_once_and_stores_only_its_hash(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let res = app
        .admin(Method::POST, "/admin/clients", Some(web_client()))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let created = res.json();
    let id = created["client_id"].as_str().expect("id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(
        secret.starts_with("lk_cs_") && secret.len() >= 49,
        "256-bit secret: {secret}"
    );
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        created["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );

    let got = app
        .admin(Method::GET, &format!("/admin/clients/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(
        got.json().get("client_secret").is_none(),
        "the secret is never shown again"
    );

    let snapshot = app.store.snapshot().await.expect("snapshot");
    let everything = format!("{snapshot:?}");
    assert!(
        !everything.contains(&secret),
        "the secret itself is not stored"
    );
    let mut tx = latchkey_core::store::Store::begin(&app.store)
        .await
        .expect("tx");
    let ok = app
        .state
        .clients
        .verify_secret(tx.as_mut(), &id, &SecretString::new(secret))
        .await
        .expect("verify");
    assert!(ok, "the stored hash verifies the secret");
    let bad = app
        .state
        .clients
        .verify_secret(tx.as_mut(), &id, &SecretString::new("lk_cs_nope"))
        .await
        .expect("verify");
    assert!(!bad);
    tx.commit().await.expect("commit");
}

engine_test!(public_clients_get_no_secret);
async fn public_clients_get_no_secret(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let res = app
        .admin(
            Method::POST,
            "/admin/clients",
            Some(json!({"client_id": "cli", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert!(res.json().get("client_secret").is_none());
    assert_eq!(app.count("client_secrets").await, 0);
}

engine_test!(bad_input_is_refused_clearly_and_changes_nothing);
async fn bad_input_is_refused_clearly_and_changes_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let before = app.store.snapshot().await.expect("snapshot");
    let cases: Vec<(serde_json::Value, StatusCode, &str, &str)> = vec![
        (
            json!({"client_nam": "typo"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_nam",
        ),
        (
            json!({"redirect_uris": ["https://a.test/cb#frag"]}),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "fragment",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "javascript",
        ),
        (
            json!({"redirect_uris": ["http://evil.test/cb"]}),
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "https",
        ),
        (
            json!({"grant_types": ["implicit"], "redirect_uris": ["https://a.test/cb"]}),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "OAuth 2.1",
        ),
        (
            json!({"redirect_uris": ["https://a.test/cb"], "client_secret": "chosen"}),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "client_secret",
        ),
        (
            json!({"redirect_uris": "https://a.test/cb"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "sequence",
        ),
        (
            json!({"client_id": "has space", "redirect_uris": ["https://a.test/cb"]}),
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "client_id",
        ),
    ];
    for (body, status, code, mentions) in cases {
        let res = app
            .admin(Method::POST, "/admin/clients", Some(body.clone()))
            .await;
        assert_eq!(res.status, status, "{body}: {}", res.text());
        let err = res.json();
        assert_eq!(err["error"], code, "{body}");
        assert_eq!(err["status_code"], status.as_u16());
        let description = err["error_description"].as_str().expect("description");
        assert!(description.contains(mentions), "{body}: {description}");
    }
    // Not JSON at all, the wrong content type, and an oversized body.
    for (content_type, body) in [
        ("application/json", "{not json".to_owned()),
        ("text/plain", "{}".to_owned()),
    ] {
        let req = Request::post("/admin/clients")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("req");
        let res = TestApp::call(&app.admin, req).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
        assert_eq!(res.json()["error"], "invalid_request");
    }
    let huge = json!({"client_name": "x".repeat(200_000)});
    let res = app.admin(Method::POST, "/admin/clients", Some(huge)).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "nothing was stored"
    );
}

engine_test!(duplicate_ids_conflict);
async fn duplicate_ids_conflict(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let mut body = web_client();
    body["client_id"] = json!("fixed-id");
    assert_eq!(
        app.admin(Method::POST, "/admin/clients", Some(body.clone()))
            .await
            .status,
        StatusCode::CREATED
    );
    let res = app.admin(Method::POST, "/admin/clients", Some(body)).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.json()["error"], "conflict");
    assert_eq!(
        app.count("client_secrets").await,
        1,
        "the refused create added no secret"
    );
}

engine_test!(list_paginates_with_a_link_header);
async fn list_paginates_with_a_link_header(db: TestDatabase) {
    let app = TestApp::new(db).await;
    for i in 0..5 {
        let mut body = web_client();
        body["client_id"] = json!(format!("client-{i}"));
        body["owner"] = json!(if i < 3 { "team-a" } else { "team-b" });
        assert_eq!(
            app.admin(Method::POST, "/admin/clients", Some(body))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let page = app
        .admin(Method::GET, "/admin/clients?page_size=2", None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let ids: Vec<String> = page
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["client_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, ["client-0", "client-1"]);
    let link = page.header("link").expect("link").to_owned();
    assert!(link.ends_with("rel=\"next\""), "{link}");
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("url")
        .to_owned();
    let page2 = app.admin(Method::GET, &next, None).await;
    let ids: Vec<String> = page2
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["client_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, ["client-2", "client-3"]);
    let last = app
        .admin(
            Method::GET,
            "/admin/clients?page_size=10&owner=team-b",
            None,
        )
        .await;
    assert_eq!(last.json().as_array().expect("array").len(), 2);
    assert!(last.header("link").is_none(), "no next page");
    let bad = app
        .admin(Method::GET, "/admin/clients?page_token=%%%", None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = app
        .admin(Method::GET, "/admin/clients?pagesize=2", None)
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::BAD_REQUEST,
        "unknown query parameters are refused"
    );
}

engine_test!(put_patch_and_delete);
async fn put_patch_and_delete(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let created = app
        .admin(Method::POST, "/admin/clients", Some(web_client()))
        .await
        .json();
    let id = created["client_id"].as_str().expect("id").to_owned();
    let path = format!("/admin/clients/{id}");

    let mut replacement = web_client();
    replacement["client_name"] = json!("Renamed");
    replacement["redirect_uris"] = json!(["https://app.acme.test/v2/callback"]);
    let res = app.admin(Method::PUT, &path, Some(replacement)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["client_name"], "Renamed");
    assert_eq!(res.json()["created_at"], created["created_at"]);

    let mismatch = json!({"client_id": "other", "redirect_uris": ["https://a.test/cb"]});
    assert_eq!(
        app.admin(Method::PUT, &path, Some(mismatch)).await.status,
        StatusCode::BAD_REQUEST
    );

    let patch = json!([{"op": "replace", "path": "/client_name", "value": "Patched"}, {"op": "add", "path": "/contacts/-", "value": "ops@acme.test"}]);
    let res = app.admin(Method::PATCH, &path, Some(patch)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["client_name"], "Patched");
    assert_eq!(res.json()["contacts"], json!(["ops@acme.test"]));

    let before = app.store.snapshot().await.expect("snapshot");
    let bad_patch =
        json!([{"op": "replace", "path": "/redirect_uris/0", "value": "javascript:alert(1)"}]);
    assert_eq!(
        app.admin(Method::PATCH, &path, Some(bad_patch))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let failing_test = json!([{"op": "test", "path": "/client_name", "value": "nope"}]);
    assert_eq!(
        app.admin(Method::PATCH, &path, Some(failing_test))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "refused patches change nothing"
    );

    assert_eq!(
        app.admin(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.admin(Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.admin(Method::DELETE, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.count("client_secrets").await,
        0,
        "secrets went with the client"
    );
    let audit = app.count("audit_log").await;
    assert_eq!(audit, 4, "create, update, patch and delete are audited");
}

engine_test!(unknown_clients_are_404_in_hydras_shape);
async fn unknown_clients_are_404_in_hydras_shape(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let res = app.admin(Method::GET, "/admin/clients/nope", None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let body = res.json();
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["status_code"], 404);
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

engine_test!(the_admin_token_is_required_when_configured);
async fn the_admin_token_is_required_when_configured(db: TestDatabase) {
    let app = TestApp::with_settings(db, |s| {
        s.admin_token = Some(SecretString::new("an-admin-token-of-some-length"));
    })
    .await;
    let res = app.admin(Method::GET, "/admin/clients", None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(
        res.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );
    let req = Request::get("/admin/clients")
        .header(
            header::AUTHORIZATION,
            "Bearer an-admin-token-of-some-length",
        )
        .body(Body::empty())
        .expect("req");
    assert_eq!(TestApp::call(&app.admin, req).await.status, StatusCode::OK);
    let wrong = Request::get("/admin/clients")
        .header(header::AUTHORIZATION, "Bearer nope")
        .body(Body::empty())
        .expect("req");
    assert_eq!(
        TestApp::call(&app.admin, wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
}

engine_test!(deeply_nested_json_is_refused);
async fn deeply_nested_json_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let deep = format!(
        r#"{{"client_name":"x","redirect_uris":["https://a.test/cb"],"metadata":{}1{}}}"#,
        r#"{"a":"#.repeat(40),
        "}".repeat(40)
    );
    let req = Request::post("/admin/clients")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(deep))
        .expect("req");
    let res = TestApp::call(&app.admin, req).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.json()["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("deeper"))
    );
    assert_eq!(app.count("clients").await, 0);
}
