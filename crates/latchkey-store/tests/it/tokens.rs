use latchkey_core::client::ClientStatus;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::records::{AccessTokenRecord, TokenClaims, TokenLookup};
use latchkey_core::store::Store;
use latchkey_store::SqlStore;
use latchkey_types::Scope;

use crate::clients::sample;
use crate::stores;

fn token(hash: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        token_hash: TokenHash(hash.into()),
        client_id: "client-1".into(),
        grant_id: None,
        family_id: "family-1".into(),
        subject: "client-1".into(),
        scope: Scope::parse("dns.read").expect("scope"),
        audience: vec!["https://api.example.com".into()],
        claims: TokenClaims {
            auth_time: 1_700_000_000,
            ..TokenClaims::default()
        },
        issued_at: 1_700_000_000,
        expires_at: 1_700_003_600,
        revoked_at: None,
    }
}

/// `Store::access_token` (on SQLite, rusqlite on the caller's thread) and the repository's
/// `access` (sqlx) give the same answer, whatever the state of the token and its client.
async fn both(store: &SqlStore, hash: &str) -> Option<TokenLookup<AccessTokenRecord>> {
    let hash = TokenHash(hash.into());
    let direct = store.access_token(&hash).await.expect("access_token");
    let through_tx = store
        .read()
        .await
        .expect("read")
        .tokens()
        .access(&hash)
        .await
        .expect("access");
    assert_eq!(direct, through_tx, "{:?}", store.backend());
    direct
}

#[tokio::test]
async fn the_direct_access_token_lookup_agrees_with_the_repository() {
    for (_db, store) in stores().await {
        assert_eq!(both(&store, "missing").await, None);

        let mut tx = store.begin().await.expect("begin");
        tx.clients()
            .insert(&sample("client-1"))
            .await
            .expect("client");
        tx.tokens()
            .insert_access(&token("h1"))
            .await
            .expect("token");
        tx.commit().await.expect("commit");
        let found = both(&store, "h1").await.expect("found");
        assert_eq!(found.token, token("h1"));
        assert!(found.client_active && !found.grant_revoked);

        // A revocation and a suspension committed through sqlx are seen at once.
        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.tokens()
                .revoke_access(&TokenHash("h1".into()), 1_700_000_100)
                .await
                .expect("revoke")
        );
        let mut client = sample("client-1");
        client.status = ClientStatus::Suspended;
        tx.clients().update(&client).await.expect("suspend");
        tx.commit().await.expect("commit");
        let found = both(&store, "h1").await.expect("found");
        assert_eq!(found.token.revoked_at, Some(1_700_000_100));
        assert!(!found.client_active);

        // A token written after the reader connections were opened is found too.
        let mut tx = store.begin().await.expect("begin");
        tx.tokens()
            .insert_access(&token("h2"))
            .await
            .expect("token");
        tx.commit().await.expect("commit");
        assert!(both(&store, "h2").await.is_some());
    }
}
