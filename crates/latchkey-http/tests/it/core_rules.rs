//! The protocol rules of revocation and introspection, asked of the core's services directly
//! (no HTTP), with the mock clock: what a resource server and a client observe, on each engine.

use base64::Engine as _;
use latchkey_core::oauth::params::Params;
use latchkey_store::testing::TestDatabase;

use crate::adversarial::{service, service_token};
use crate::support::{TestApp, engine_test};

fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn form(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

engine_test!(an_access_token_is_active_until_its_expiry_by_the_clock);
async fn an_access_token_is_active_until_its_expiry_by_the_clock(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = service(&app).await;
    let token = service_token(&app, &client).await;
    let engine = &app.state.engine;
    let found = engine.introspect(&token, None).await.expect("introspect");
    assert!(found.active);
    let exp = found.exp.expect("exp");
    // A required scope the token does not carry: inactive to that resource server.
    let other = engine
        .introspect(&token, Some("openid"))
        .await
        .expect("introspect");
    assert!(!other.active);
    app.clock.set(exp - 1);
    assert!(
        engine
            .introspect(&token, None)
            .await
            .expect("introspect")
            .active
    );
    app.clock.set(exp);
    assert!(
        !engine
            .introspect(&token, None)
            .await
            .expect("introspect")
            .active
    );
}

engine_test!(a_revocation_by_another_client_changes_nothing_and_the_owners_takes_effect);
async fn a_revocation_by_another_client_changes_nothing_and_the_owners_takes_effect(
    db: TestDatabase,
) {
    let app = TestApp::new(db).await;
    let owner = service(&app).await;
    let other = service(&app).await;
    let token = service_token(&app, &owner).await;
    let engine = &app.state.engine;
    let snapshot = crate::adversarial::before(&app).await;
    let by_other = basic(&other.id, other.secret.as_deref().unwrap_or_default());
    engine
        .revoke(Some(&by_other), &form(&[("token", &token)]))
        .await
        .expect("RFC 7009: the answer is the same");
    crate::adversarial::unchanged(&app, &snapshot).await;
    assert!(
        engine
            .introspect(&token, None)
            .await
            .expect("introspect")
            .active
    );
    let by_owner = basic(&owner.id, owner.secret.as_deref().unwrap_or_default());
    engine
        .revoke(Some(&by_owner), &form(&[("token", &token)]))
        .await
        .expect("revoked");
    assert!(
        !engine
            .introspect(&token, None)
            .await
            .expect("introspect")
            .active
    );
    // A second revocation is answered the same, and writes nothing more.
    let snapshot = crate::adversarial::before(&app).await;
    engine
        .revoke(Some(&by_owner), &form(&[("token", &token)]))
        .await
        .expect("again");
    crate::adversarial::unchanged(&app, &snapshot).await;
}
