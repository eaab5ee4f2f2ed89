use latchkey_core::client::{
    AuthMethod, Client, ClientFilter, ClientSecretRecord, ClientStatus, GrantType,
};
use latchkey_core::config::AccessTokenStrategy;
use latchkey_core::store::{Store, StoreError};
use latchkey_types::Scope;

use crate::stores;

pub fn sample(id: &str) -> Client {
    Client {
        id: id.into(),
        name: format!("App {id}"),
        redirect_uris: vec![
            "https://app.example.com/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        response_types: vec!["code".into()],
        scope: Scope::parse("openid offline_access dns.read").expect("scope"),
        audience: vec!["https://api.example.com".into()],
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        token_endpoint_auth_signing_alg: None,
        id_token_signed_response_alg: Some("ES256".into()),
        userinfo_signed_response_alg: None,
        jwks: Some(serde_json::json!({"keys": []})),
        access_token_strategy: Some(AccessTokenStrategy::Jwt),
        skip_consent: true,
        skip_logout_consent: false,
        logout: latchkey_core::client::LogoutChannels {
            frontchannel_uri: Some("https://app.example.com/fc".into()),
            frontchannel_session_required: true,
            backchannel_uri: Some("https://app.example.com/bc".into()),
            backchannel_session_required: false,
        },
        owner: "team-a".into(),
        logo_uri: "https://app.example.com/logo.png".into(),
        client_uri: String::new(),
        policy_uri: String::new(),
        tos_uri: String::new(),
        contacts: vec!["ops@example.com".into()],
        metadata: serde_json::json!({"tier": "gold", "n": 3}),
        owner_account_id: None,
        status: ClientStatus::Active,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_001,
        origin: latchkey_core::client::ClientOrigin::Registered,
        device_lifespan: latchkey_core::client::Lifespan {
            access: Some(600),
            id: None,
            refresh: Some(86_400),
        },
    }
}

#[tokio::test]
async fn insert_get_round_trips_every_field() {
    for (_db, store) in stores().await {
        let c = sample("client-1");
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&c).await.expect("insert");
        tx.commit().await.expect("commit");
        let got = store
            .read()
            .await
            .expect("read")
            .clients()
            .get("client-1")
            .await
            .expect("get");
        assert_eq!(got, Some(c), "{:?}", store.backend());
        let none = store
            .read()
            .await
            .expect("read")
            .clients()
            .get("nope")
            .await
            .expect("get");
        assert_eq!(none, None);
    }
}

#[tokio::test]
async fn duplicate_ids_conflict_and_change_nothing() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&sample("dup")).await.expect("insert");
        tx.commit().await.expect("commit");
        let mut other = sample("dup");
        other.name = "Other".into();
        let mut tx = store.begin().await.expect("begin");
        let err = tx.clients().insert(&other).await.expect_err("conflict");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        drop(tx);
        let got = store
            .read()
            .await
            .expect("read")
            .clients()
            .get("dup")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(got.name, "App dup");
    }
}

#[tokio::test]
async fn dropping_a_transaction_rolls_it_back() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&sample("ghost")).await.expect("insert");
        drop(tx);
        let got = store
            .read()
            .await
            .expect("read")
            .clients()
            .get("ghost")
            .await
            .expect("get");
        assert_eq!(got, None);
    }
}

#[tokio::test]
async fn list_pages_by_id_and_filters() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        for i in 0..5 {
            let mut c = sample(&format!("c{i}"));
            c.owner = if i % 2 == 0 {
                "even".into()
            } else {
                "odd".into()
            };
            tx.clients().insert(&c).await.expect("insert");
        }
        tx.commit().await.expect("commit");
        let mut r = store.read().await.expect("read");
        let all = ClientFilter::default();
        let page1 = r.clients().list(&all, None, 2).await.expect("list");
        assert_eq!(
            page1.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["c0", "c1"]
        );
        let page2 = r.clients().list(&all, Some("c1"), 2).await.expect("list");
        assert_eq!(
            page2.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["c2", "c3"]
        );
        let even = ClientFilter {
            owner: Some("even".into()),
            ..ClientFilter::default()
        };
        assert_eq!(
            r.clients().list(&even, None, 10).await.expect("list").len(),
            3
        );
        let named = ClientFilter {
            client_name: Some("App c4".into()),
            ..ClientFilter::default()
        };
        assert_eq!(
            r.clients()
                .list(&named, None, 10)
                .await
                .expect("list")
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn update_and_delete_report_whether_the_client_existed() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        let mut c = sample("u1");
        tx.clients().insert(&c).await.expect("insert");
        c.name = "Renamed".into();
        c.status = ClientStatus::Suspended;
        assert!(tx.clients().update(&c).await.expect("update"));
        assert!(
            !tx.clients()
                .update(&sample("missing"))
                .await
                .expect("update")
        );
        tx.commit().await.expect("commit");
        let got = store
            .read()
            .await
            .expect("read")
            .clients()
            .get("u1")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(got.name, "Renamed");
        assert_eq!(got.status, ClientStatus::Suspended);
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.clients().delete("u1").await.expect("delete"));
        assert!(!tx.clients().delete("u1").await.expect("delete"));
        tx.commit().await.expect("commit");
    }
}

#[tokio::test]
async fn secrets_belong_to_their_client_and_go_with_it() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&sample("s1")).await.expect("insert");
        for (i, t) in [(1, 100), (2, 200)] {
            tx.clients()
                .insert_secret(&ClientSecretRecord {
                    id: format!("sec{i}"),
                    client_id: "s1".into(),
                    secret_hash: format!("sha256$h{i}"),
                    created_at: t,
                    expires_at: if i == 1 { Some(150) } else { None },
                })
                .await
                .expect("secret");
        }
        tx.commit().await.expect("commit");
        let mut r = store.begin().await.expect("begin");
        let secrets = r.clients().secrets("s1").await.expect("secrets");
        assert_eq!(
            secrets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["sec2", "sec1"]
        );
        assert_eq!(secrets[1].expires_at, Some(150));
        assert!(
            r.clients()
                .delete_secret("s1", "sec1")
                .await
                .expect("delete")
        );
        assert!(
            !r.clients()
                .delete_secret("other", "sec2")
                .await
                .expect("delete")
        );
        r.clients().delete("s1").await.expect("delete client");
        assert!(
            r.clients().secrets("s1").await.expect("secrets").is_empty(),
            "secrets cascade"
        );
        r.commit().await.expect("commit");
    }
}

#[tokio::test]
async fn a_secret_for_a_missing_client_is_refused() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        let err = tx
            .clients()
            .insert_secret(&ClientSecretRecord {
                id: "x".into(),
                client_id: "nobody".into(),
                secret_hash: "sha256$x".into(),
                created_at: 1,
                expires_at: None,
            })
            .await;
        assert!(err.is_err(), "{:?}: foreign key enforced", store.backend());
    }
}
