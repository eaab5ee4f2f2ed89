use latchkey_core::platform::model::{
    Account, AccountKind, AppProfile, AppType, ConsoleSession, Membership, Role, User, Visibility,
};
use latchkey_core::store::{Store, StoreError};
use latchkey_types::Scope;

use crate::clients::sample;
use crate::stores;

pub fn account(id: &str, name: &str) -> Account {
    Account {
        id: id.into(),
        name: name.into(),
        kind: AccountKind::Customer,
        block_third_party_apps: false,
        created_at: 100,
        updated_at: 100,
    }
}

fn user(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        name: format!("User {id}"),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        status: "active".into(),
        is_operator: false,
        created_at: 100,
        updated_at: 101,
    }
}

pub fn profile(client_id: &str, account_id: &str) -> AppProfile {
    AppProfile {
        client_id: client_id.into(),
        account_id: account_id.into(),
        description: "An app".into(),
        app_type: AppType::Web,
        required_scopes: Scope::parse("openid dns.read").expect("scope"),
        optional_scopes: Scope::parse("dns.write").expect("scope"),
        visibility: Visibility::Private,
        domain: None,
        verification_token: None,
        domain_verified_at: None,
        requested_restricted: vec!["members.write".into()],
        approved_restricted: vec![],
        promoted_at: None,
        created_at: 100,
        updated_at: 100,
    }
}

#[tokio::test]
async fn accounts_users_and_memberships_round_trip() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.accounts()
            .insert_account(&account("acme", "Acme"))
            .await
            .expect("account");
        tx.accounts()
            .insert_account(&account("beta", "Beta"))
            .await
            .expect("account");
        tx.accounts()
            .insert_user(&user("u1", "a@acme.test"))
            .await
            .expect("user");
        tx.accounts()
            .upsert_membership(&Membership {
                account_id: "acme".into(),
                user_id: "u1".into(),
                role: Role::Developer,
                created_at: 100,
            })
            .await
            .expect("membership");
        tx.accounts()
            .upsert_membership(&Membership {
                account_id: "acme".into(),
                user_id: "u1".into(),
                role: Role::Admin,
                created_at: 100,
            })
            .await
            .expect("role change");
        tx.commit().await.expect("commit");

        let mut r = store.read().await.expect("read");
        assert_eq!(
            r.accounts().account("acme").await.expect("get"),
            Some(account("acme", "Acme"))
        );
        assert_eq!(
            r.accounts()
                .user_by_email("a@acme.test")
                .await
                .expect("get"),
            Some(user("u1", "a@acme.test"))
        );
        assert_eq!(r.accounts().user("nope").await.expect("get"), None);
        let ms = r.accounts().memberships_of("u1").await.expect("list");
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].role, Role::Admin);
        assert_eq!(ms[0].account.name, "Acme");
        let members = r.accounts().members("acme").await.expect("members");
        assert_eq!(members[0].user.id, "u1");
        assert_eq!(r.accounts().list_accounts().await.expect("list").len(), 2);
        drop(r);

        let mut tx = store.begin().await.expect("begin");
        let dup = tx.accounts().insert_user(&user("u2", "a@acme.test")).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        drop(tx);
        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.accounts()
                .set_block_third_party_apps("acme", true, 200)
                .await
                .expect("set")
        );
        assert!(
            !tx.accounts()
                .set_block_third_party_apps("nope", true, 200)
                .await
                .expect("set")
        );
        tx.commit().await.expect("commit");
        let a = store
            .read()
            .await
            .expect("read")
            .accounts()
            .account("acme")
            .await
            .expect("get")
            .expect("exists");
        assert!(a.block_third_party_apps);
        assert_eq!(a.updated_at, 200);
    }
}

#[tokio::test]
async fn app_profiles_round_trip_lock_verified_domains_and_go_with_their_client() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.accounts()
            .insert_account(&account("acme", "Acme"))
            .await
            .expect("account");
        for id in ["c1", "c2"] {
            let mut c = sample(id);
            c.owner_account_id = Some("acme".into());
            tx.clients().insert(&c).await.expect("client");
            tx.apps().insert(&profile(id, "acme")).await.expect("app");
        }
        tx.commit().await.expect("commit");

        let mut r = store.read().await.expect("read");
        assert_eq!(
            r.apps().get("c1").await.expect("get"),
            Some(profile("c1", "acme"))
        );
        assert_eq!(
            r.apps().list_for_account("acme").await.expect("list").len(),
            2
        );
        assert_eq!(r.apps().list_all(1).await.expect("list").len(), 1);
        assert_eq!(r.apps().user_count("c1").await.expect("count"), 0);
        drop(r);

        let mut verified = profile("c1", "acme");
        verified.domain = Some("acme.example".into());
        verified.domain_verified_at = Some(300);
        verified.visibility = Visibility::Public;
        verified.approved_restricted = vec!["members.write".into()];
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.apps().update(&verified).await.expect("update"));
        tx.commit().await.expect("commit");
        let got = store
            .read()
            .await
            .expect("read")
            .apps()
            .get("c1")
            .await
            .expect("get");
        assert_eq!(got, Some(verified.clone()));
        assert_eq!(got.expect("app").pending_restricted(), Vec::<String>::new());

        // The same domain verified for another app conflicts.
        let mut other = profile("c2", "acme");
        other.domain = Some("acme.example".into());
        other.domain_verified_at = Some(301);
        let mut tx = store.begin().await.expect("begin");
        let r = tx.apps().update(&other).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        drop(tx);

        // Deleting the client deletes its profile.
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.clients().delete("c1").await.expect("delete"));
        tx.commit().await.expect("commit");
        assert_eq!(
            store
                .read()
                .await
                .expect("read")
                .apps()
                .get("c1")
                .await
                .expect("get"),
            None
        );
    }
}

#[tokio::test]
async fn console_sessions_expire_and_purge() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.accounts()
            .insert_user(&user("u1", "a@acme.test"))
            .await
            .expect("user");
        for (id, exp) in [("s1", 1000), ("s2", 50)] {
            tx.console_sessions()
                .insert(&ConsoleSession {
                    id: id.into(),
                    cookie_hash: format!("hash-{id}"),
                    user_id: "u1".into(),
                    authenticated_at: 10,
                    created_at: 10,
                    expires_at: exp,
                })
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
        let mut r = store.read().await.expect("read");
        let s = r
            .console_sessions()
            .by_cookie("hash-s1", 100)
            .await
            .expect("get")
            .expect("live");
        assert_eq!(s.user_id, "u1");
        assert!(
            r.console_sessions()
                .by_cookie("hash-s2", 100)
                .await
                .expect("get")
                .is_none(),
            "expired"
        );
        drop(r);
        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.console_sessions()
                .purge_expired(100, 10)
                .await
                .expect("purge"),
            1
        );
        assert!(tx.console_sessions().delete("s1").await.expect("delete"));
        tx.commit().await.expect("commit");
        assert_eq!(store.count_rows("console_sessions").await.expect("n"), 0);
    }
}

#[tokio::test]
async fn login_throttle_counts_atomically_blocks_clears_and_purges() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        for expected in 1..=3 {
            assert_eq!(
                tx.login_throttle()
                    .record_failure("user:x", 100)
                    .await
                    .expect("record"),
                expected
            );
        }
        tx.login_throttle()
            .block("user:x", 500)
            .await
            .expect("block");
        tx.login_throttle()
            .record_failure("ip:127.0.0.1", 10)
            .await
            .expect("record");
        tx.commit().await.expect("commit");
        let t = store
            .read()
            .await
            .expect("read")
            .login_throttle()
            .get("user:x")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!((t.failures, t.blocked_until), (3, 500));
        let mut tx = store.begin().await.expect("begin");
        assert_eq!(tx.login_throttle().purge(50, 10).await.expect("purge"), 1);
        tx.login_throttle().clear("user:x").await.expect("clear");
        tx.commit().await.expect("commit");
        assert_eq!(store.count_rows("login_throttle").await.expect("n"), 0);
    }
}
