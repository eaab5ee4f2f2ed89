use latchkey_core::keys::{KeyState, SigningAlg, StoredSigningKey};
use latchkey_core::store::Store;

use crate::stores;

fn key(kid: &str, alg: SigningAlg, created_at: i64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.into(),
        alg,
        private_key: format!("sealed-{kid}"),
        state: KeyState::Active,
        created_at,
        retired_at: None,
        expires_at: None,
    }
}

#[tokio::test]
async fn keys_list_newest_first_retire_and_expire() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.signing_keys()
            .insert(&key("a", SigningAlg::RS256, 10))
            .await
            .expect("insert");
        tx.signing_keys()
            .insert(&key("b", SigningAlg::ES256, 20))
            .await
            .expect("insert");
        tx.signing_keys()
            .insert(&key("c", SigningAlg::RS256, 30))
            .await
            .expect("insert");
        assert!(
            tx.signing_keys()
                .retire("a", 30, 100)
                .await
                .expect("retire")
        );
        assert!(
            !tx.signing_keys()
                .retire("a", 31, 101)
                .await
                .expect("retire twice"),
            "already retired"
        );
        tx.commit().await.expect("commit");

        let mut r = store.read().await.expect("read");
        let listed = r.signing_keys().list(50).await.expect("list");
        assert_eq!(
            listed.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["c", "b", "a"]
        );
        let a = listed.iter().find(|k| k.kid == "a").expect("a");
        assert_eq!(
            (a.state, a.retired_at, a.expires_at),
            (KeyState::Retired, Some(30), Some(100))
        );
        assert_eq!(
            r.signing_keys().list(100).await.expect("list").len(),
            2,
            "expired keys are not listed"
        );
        drop(r);

        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.signing_keys().delete_expired(100).await.expect("delete"),
            1
        );
        tx.commit().await.expect("commit");
    }
}
