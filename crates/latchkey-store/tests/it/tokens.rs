use latchkey_core::audit::{Actor, AuditEntry, AuditFilter};
use latchkey_core::client::ClientStatus;
use latchkey_core::client::cache::ClientGuard;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::records::{
    AccessTokenRecord, AuthorizationCode, CodeData, Grant, GrantData, RefreshTokenRecord,
    TokenClaims, TokenLookup,
};
use latchkey_core::store::{Exchange, Exchanged, Rotation, Store, StoreWrites as _};
use latchkey_store::SqlStore;
use latchkey_types::Scope;

use crate::clients::sample;
use crate::stores;

pub fn token(hash: &str) -> AccessTokenRecord {
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

/// `Store::access_token` (on SQLite, a reader on the caller's thread) and the repository's
/// `access` in a unit of work give the same answer, whatever the state of the token and its client.
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

        // A revocation and a suspension committed through a transaction are seen at once.
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

fn revocation(id: &str, hash: &str) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        occurred_at: 1_700_000_100,
        actor: Actor {
            kind: "client".into(),
            id: Some("client-1".into()),
        },
        account_id: None,
        action: "token.revoke".into(),
        target_kind: "token_family".into(),
        target_id: hash.into(),
        details: serde_json::json!({ "token_type": "access_token" }),
    }
}

async fn revoked_at(store: &SqlStore, hash: &str) -> Option<i64> {
    let found = store.access_token(&TokenHash(hash.into())).await;
    found.expect("lookup").expect("token").token.revoked_at
}

/// `Store::revoke_access_guarded` (a unit of work, on SQLite in a group commit
/// with the others waiting): it writes only while the guard
/// holds, audits only what it revoked, and one call that fails undoes its own writes and no one
/// else's.
#[tokio::test]
async fn guarded_revocations_write_alone_and_fail_alone() {
    for (_db, store) in stores().await {
        let client = sample("client-1");
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&client).await.expect("client");
        for i in 0..40 {
            tx.tokens()
                .insert_access(&token(&format!("r{i}")))
                .await
                .expect("token");
        }
        tx.commit().await.expect("commit");
        let guard = ClientGuard {
            client_id: client.id.clone(),
            updated_at: client.updated_at,
            secret_id: None,
        };
        let now = 1_700_000_100;
        let count = |store: &SqlStore| {
            let store = store.clone();
            async move {
                store
                    .read()
                    .await
                    .expect("read")
                    .audit()
                    .list(&AuditFilter::default(), 100)
                    .await
                    .expect("audit")
                    .len()
            }
        };

        // A guard that no longer holds (the row changed since it was cached) writes nothing.
        let stale = ClientGuard {
            updated_at: client.updated_at - 1,
            ..guard.clone()
        };
        let hash = TokenHash("r0".into());
        let answer = store
            .revoke_access_guarded(hash.clone(), stale.clone(), now, revocation("a0", "r0"))
            .await
            .expect("stale guard");
        assert_eq!(answer, None);
        assert_eq!(revoked_at(&store, "r0").await, None);
        assert_eq!(count(&store).await, 0);

        // Revoked once, audited once; again, nothing more.
        for expected in [Some(true), Some(false)] {
            let answer = store
                .revoke_access_guarded(hash.clone(), guard.clone(), now, revocation("a1", "r0"))
                .await
                .expect("revoke");
            assert_eq!(answer, expected);
        }
        assert_eq!(revoked_at(&store, "r0").await, Some(now));
        assert_eq!(count(&store).await, 1);

        // Concurrent revocations, committed together on SQLite; the one whose audit entry
        // collides (its id is taken) fails, and its token stays as it was.
        let calls: Vec<_> = (1..40)
            .map(|i| {
                let (store, guard) = (store.clone(), guard.clone());
                let id = if i == 20 {
                    "a1".to_owned()
                } else {
                    format!("b{i}")
                };
                tokio::spawn(async move {
                    let hash = TokenHash(format!("r{i}"));
                    let entry = revocation(&id, &hash.0);
                    store
                        .revoke_access_guarded(hash, guard.clone(), now, entry)
                        .await
                })
            })
            .collect();
        for (i, call) in (1..40).zip(calls) {
            let answer = call.await.expect("task");
            let revoked = revoked_at(&store, &format!("r{i}")).await;
            if i == 20 {
                assert!(answer.is_err(), "{answer:?}");
                assert_eq!(revoked, None, "{:?}", store.backend());
            } else {
                assert_eq!(answer.expect("revoke"), Some(true));
                assert_eq!(revoked, Some(now));
            }
        }
        assert_eq!(count(&store).await, 39);
    }
}

/// `Store::refresh_token` (on SQLite, a reader on the caller's thread) and the repository's
/// `refresh` in a unit of work give the same answer as the token is claimed, given a successor and
/// revoked.
#[tokio::test]
async fn the_direct_refresh_token_lookup_agrees_with_the_repository() {
    for (_db, store) in stores().await {
        let hash = TokenHash("rt1".into());
        let both = || async {
            let direct = store.refresh_token(&hash).await.expect("refresh_token");
            let mut read = store.read().await.expect("read");
            let through_tx = read.tokens().refresh(&hash).await.expect("refresh");
            assert_eq!(direct, through_tx, "{:?}", store.backend());
            direct
        };
        assert_eq!(both().await, None);

        let t = token("ignored");
        let record = RefreshTokenRecord {
            token_hash: hash.clone(),
            client_id: t.client_id,
            grant_id: None,
            family_id: t.family_id,
            subject: t.subject,
            scope: t.scope,
            audience: t.audience,
            claims: t.claims,
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            used_at: None,
            reuse_count: 0,
            successor: None,
            revoked_at: None,
        };
        let mut tx = store.begin().await.expect("begin");
        tx.clients()
            .insert(&sample("client-1"))
            .await
            .expect("client");
        tx.tokens().insert_refresh(&record).await.expect("token");
        tx.commit().await.expect("commit");
        assert_eq!(both().await.expect("found").token, record);

        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.tokens()
                .claim_refresh(&hash, 1_700_000_100)
                .await
                .expect("claim")
        );
        tx.tokens()
            .set_successor(&hash, "sealed")
            .await
            .expect("successor");
        tx.commit().await.expect("commit");
        let found = both().await.expect("found").token;
        assert_eq!(found.used_at, Some(1_700_000_100));
        assert_eq!(found.successor.as_deref(), Some("sealed"));

        let mut tx = store.begin().await.expect("begin");
        tx.tokens()
            .revoke_family(&record.family_id, 1_700_000_200)
            .await
            .expect("revoke");
        tx.commit().await.expect("commit");
        let found = both().await.expect("found").token;
        assert_eq!(found.revoked_at, Some(1_700_000_200));
        assert_eq!(found.successor, None);
    }
}

pub fn grant(id: &str, subject: &str) -> Grant {
    Grant {
        id: id.into(),
        subject: subject.into(),
        client_id: "client-1".into(),
        scope: Scope::parse("openid offline_access").expect("scope"),
        audience: vec![],
        accounts: vec![],
        session_access_token: serde_json::json!({}),
        session_id_token: serde_json::json!({}),
        remember: false,
        remember_until: None,
        login_session_id: None,
        data: GrantData::default(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        last_used_at: None,
        revoked_at: None,
    }
}

pub fn code(hash: &str, grant_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: TokenHash(hash.into()),
        client_id: "client-1".into(),
        grant_id: grant_id.into(),
        family_id: format!("family-{hash}"),
        data: CodeData {
            redirect_uri: "https://app.example.com/cb".into(),
            redirect_uri_given: true,
            code_challenge: Some("challenge".into()),
            nonce: None,
            subject: "alice".into(),
            scope: Scope::parse("openid offline_access").expect("scope"),
            audience: vec![],
            claims: TokenClaims::default(),
        },
        created_at: 1_700_000_000,
        expires_at: 1_700_000_600,
        consumed_at: None,
    }
}

/// What exchanging the code `code` of the grant `grant_id` writes: an access token, and a
/// refresh token when `refresh`.
pub fn exchange(code: &str, grant_id: &str, refresh: bool) -> Exchange {
    let access = AccessTokenRecord {
        grant_id: Some(grant_id.into()),
        family_id: format!("family-{code}"),
        ..token(&format!("at-{code}"))
    };
    let refresh = refresh.then(|| RefreshTokenRecord {
        token_hash: TokenHash(format!("rt-{code}")),
        client_id: "client-1".into(),
        grant_id: Some(grant_id.into()),
        family_id: format!("family-{code}"),
        subject: "alice".into(),
        scope: Scope::parse("openid offline_access").expect("scope"),
        audience: vec![],
        claims: TokenClaims::default(),
        issued_at: 1_700_000_100,
        expires_at: 1_700_086_500,
        used_at: None,
        reuse_count: 0,
        successor: None,
        revoked_at: None,
    });
    Exchange {
        code: TokenHash(code.into()),
        grant_id: grant_id.into(),
        access,
        refresh,
    }
}

/// Whether the code was marked used, and which of the exchange's tokens are stored.
async fn exchange_state(store: &SqlStore, code: &str) -> (bool, bool, bool) {
    let used = store
        .authorization_code(&TokenHash(code.into()))
        .await
        .expect("code")
        .expect("found")
        .consumed_at
        .is_some();
    let access = store
        .access_token(&TokenHash(format!("at-{code}")))
        .await
        .expect("access")
        .is_some();
    let refresh = store
        .refresh_token(&TokenHash(format!("rt-{code}")))
        .await
        .expect("refresh")
        .is_some();
    (used, access, refresh)
}

/// The exchange of `code` answered that its grant was revoked: the code is used up and no token
/// was stored.
async fn assert_grant_revoked(store: &SqlStore, answer: Option<Exchanged>, code: &str) {
    assert_eq!(
        answer,
        Some(Exchanged::GrantRevoked),
        "{:?}",
        store.backend()
    );
    assert_eq!(exchange_state(store, code).await, (true, false, false));
}

/// `Store::exchange_code_guarded` (a unit of work around the core's definition): it writes only
/// while the guard holds, uses a code once, and stores no token for a revoked grant, whichever
/// engine runs it.
#[tokio::test]
async fn guarded_code_exchanges_write_only_what_they_may() {
    for (_db, store) in stores().await {
        let client = sample("client-1");
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&client).await.expect("client");
        for (g, subject) in [("g1", "alice"), ("g2", "bob")] {
            let id = tx.grants().upsert_active(&grant(g, subject)).await;
            assert_eq!(id.expect("grant"), g);
        }
        for (c, g) in [("c1", "g1"), ("c2", "g1"), ("c3", "g2")] {
            tx.codes().insert(&code(c, g)).await.expect("code");
        }
        tx.commit().await.expect("commit");
        let found = store
            .authorization_code(&TokenHash("c1".into()))
            .await
            .expect("read");
        assert_eq!(found, Some(code("c1", "g1")), "{:?}", store.backend());
        assert_eq!(
            store
                .authorization_code(&TokenHash("missing".into()))
                .await
                .expect("read"),
            None
        );
        let guard = ClientGuard {
            client_id: client.id.clone(),
            updated_at: client.updated_at,
            secret_id: None,
        };
        let now = 1_700_000_100;

        // A guard that no longer holds writes nothing.
        let stale = ClientGuard {
            updated_at: client.updated_at - 1,
            ..guard.clone()
        };
        let answer = store
            .exchange_code_guarded(exchange("c1", "g1", true), stale.clone(), now)
            .await
            .expect("stale guard");
        assert_eq!(answer, None, "{:?}", store.backend());
        assert_eq!(exchange_state(&store, "c1").await, (false, false, false));

        // Exchanged once, with and without a refresh token; a second exchange writes nothing.
        for (c, refresh) in [("c1", true), ("c2", false)] {
            let answer = store
                .exchange_code_guarded(exchange(c, "g1", refresh), guard.clone(), now)
                .await
                .expect("exchange");
            assert_eq!(answer, Some(Exchanged::Written), "{:?}", store.backend());
            assert_eq!(exchange_state(&store, c).await, (true, true, refresh));
        }
        let mut again = exchange("c1", "g1", true);
        again.access.token_hash = TokenHash("at-again".into());
        let answer = store
            .exchange_code_guarded(again, guard.clone(), now)
            .await
            .expect("again");
        assert_eq!(answer, Some(Exchanged::CodeUsed));
        assert!(
            store
                .access_token(&TokenHash("at-again".into()))
                .await
                .expect("read")
                .is_none()
        );

        // The grant revoked since the code was issued: the code is used up, no token stored.
        let mut tx = store.begin().await.expect("begin");
        tx.grants()
            .revoke_for_subject("bob", Some("client-1"), now)
            .await
            .expect("revoke");
        tx.commit().await.expect("commit");
        let answer = store
            .exchange_code_guarded(exchange("c3", "g2", true), guard.clone(), now)
            .await
            .expect("revoked grant");
        assert_grant_revoked(&store, answer, "c3").await;

        // Only the exchanges that issued tokens marked their grant used.
        let mut tx = store.read().await.expect("read");
        let g1 = tx.grants().get("g1").await.expect("g1").expect("found");
        assert_eq!(g1.last_used_at, Some(now), "{:?}", store.backend());
        let g2 = tx.grants().get("g2").await.expect("g2").expect("found");
        assert_eq!(g2.last_used_at, None, "{:?}", store.backend());
        assert!(g2.revoked_at.is_some());
    }
}

/// `Store::revoke_family_guarded` (a unit of work around the core's definition): only while the
/// guard holds, every token of the family and no other, the kept response dropped, and one audit
/// entry for the call that revoked something.
#[tokio::test]
async fn guarded_family_revocations_take_the_family_and_nothing_else() {
    for (_db, store) in stores().await {
        let client = sample("client-1");
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&client).await.expect("client");
        let id = tx.grants().upsert_active(&grant("g1", "alice")).await;
        assert_eq!(id.expect("grant"), "g1");
        for (hash, family) in [
            ("a1", "family-f1"),
            ("a2", "family-f1"),
            ("b1", "family-f2"),
        ] {
            let record = AccessTokenRecord {
                family_id: family.into(),
                ..token(hash)
            };
            tx.tokens().insert_access(&record).await.expect("access");
        }
        let mut refresh = exchange("f1", "g1", true).refresh.expect("refresh");
        refresh.successor = Some("sealed".into());
        tx.tokens().insert_refresh(&refresh).await.expect("refresh");
        tx.commit().await.expect("commit");
        let guard = ClientGuard {
            client_id: client.id.clone(),
            updated_at: client.updated_at,
            secret_id: None,
        };
        let now = 1_700_000_100;
        let audited = || async {
            let mut tx = store.read().await.expect("read");
            let entries = tx.audit().list(&AuditFilter::default(), 100).await;
            entries.expect("audit").len()
        };

        // A guard that no longer holds writes nothing.
        let stale = ClientGuard {
            updated_at: client.updated_at - 1,
            ..guard.clone()
        };
        let answer = store
            .revoke_family_guarded(
                "family-f1".into(),
                stale.clone(),
                now,
                revocation("e0", "family-f1"),
            )
            .await
            .expect("stale guard");
        assert_eq!(answer, None, "{:?}", store.backend());
        assert_eq!(revoked_at(&store, "a1").await, None);
        assert_eq!(audited().await, 0);

        // The family, all of it and nothing else, audited once; again, nothing more.
        for (entry, expected) in [("e1", Some(true)), ("e2", Some(false))] {
            let answer = store
                .revoke_family_guarded(
                    "family-f1".into(),
                    guard.clone(),
                    now,
                    revocation(entry, "f1"),
                )
                .await
                .expect("revoke");
            assert_eq!(answer, expected, "{:?}", store.backend());
        }
        assert_eq!(revoked_at(&store, "a1").await, Some(now));
        assert_eq!(revoked_at(&store, "a2").await, Some(now));
        assert_eq!(revoked_at(&store, "b1").await, None);
        let found = store.refresh_token(&TokenHash("rt-f1".into())).await;
        let found = found.expect("lookup").expect("refresh").token;
        assert_eq!((found.revoked_at, found.successor), (Some(now), None));
        assert_eq!(audited().await, 1, "{:?}", store.backend());
    }
}

/// A grant revoked by a transaction that commits while a code exchange waits for the grant's row:
/// the exchange sees the revocation (on PostgreSQL, the statement reads the row's latest version
/// once the lock is free; on SQLite, the writer waits for the lock and then reads), uses the code
/// up, and stores no token.
#[tokio::test]
async fn a_code_exchange_waiting_on_a_revocation_sees_it() {
    for (_db, store) in stores().await {
        let client = sample("client-1");
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&client).await.expect("client");
        let id = tx.grants().upsert_active(&grant("g1", "alice")).await;
        assert_eq!(id.expect("grant"), "g1");
        tx.codes().insert(&code("c1", "g1")).await.expect("code");
        tx.commit().await.expect("commit");
        let guard = ClientGuard {
            client_id: client.id.clone(),
            updated_at: client.updated_at,
            secret_id: None,
        };
        let now = 1_700_000_100;

        // The revocation holds the grant's row (and, on SQLite, the write lock) until it commits.
        let mut revoking = store.begin().await.expect("begin");
        let revoked = revoking
            .grants()
            .revoke_for_subject("alice", Some("client-1"), now)
            .await;
        assert_eq!(revoked.expect("revoke"), vec!["g1".to_owned()]);
        let exchange_task = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .exchange_code_guarded(exchange("c1", "g1", true), guard.clone(), now)
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!exchange_task.is_finished(), "{:?}", store.backend());
        revoking.commit().await.expect("commit");
        let answer = exchange_task.await.expect("task").expect("exchange");
        assert_grant_revoked(&store, answer, "c1").await;
        let mut tx = store.read().await.expect("read");
        let g1 = tx.grants().get("g1").await.expect("g1").expect("found");
        assert_eq!(g1.last_used_at, None, "{:?}", store.backend());
    }
}

async fn refresh_state(store: &SqlStore, hash: &str) -> Option<(Option<i64>, Option<String>)> {
    let found = store.refresh_token(&TokenHash(hash.into())).await;
    found
        .expect("refresh")
        .map(|l| (l.token.used_at, l.token.successor))
}

/// `Store::rotate_refresh_guarded` (a unit of work around the core's definition): the claim, the
/// grant, the new tokens and the kept response, all or nothing.
#[tokio::test]
async fn guarded_rotations_write_all_or_nothing() {
    for (_db, store) in stores().await {
        let client = sample("client-1");
        let mut tx = store.begin().await.expect("begin");
        tx.clients().insert(&client).await.expect("client");
        let id = tx.grants().upsert_active(&grant("g1", "alice")).await;
        assert_eq!(id.expect("grant"), "g1");
        for old in ["old1", "old2"] {
            let record = exchange(old, "g1", true).refresh.expect("refresh");
            tx.tokens().insert_refresh(&record).await.expect("insert");
        }
        tx.commit().await.expect("commit");
        let guard = ClientGuard {
            client_id: client.id.clone(),
            updated_at: client.updated_at,
            secret_id: None,
        };
        let now = 1_700_000_200;
        let rotation = |old: &str, new: &str, refresh: bool| {
            let minted = exchange(new, "g1", refresh);
            Rotation {
                hash: TokenHash(format!("rt-{old}")),
                grant_id: Some("g1".into()),
                access: minted.access,
                refresh: minted.refresh,
                successor: format!("sealed-{new}"),
            }
        };

        // A guard that no longer holds writes nothing.
        let stale = ClientGuard {
            updated_at: client.updated_at - 1,
            ..guard.clone()
        };
        let answer = store
            .rotate_refresh_guarded(rotation("old1", "n1", true), stale.clone(), now)
            .await
            .expect("stale");
        assert_eq!(answer, None, "{:?}", store.backend());
        assert_eq!(refresh_state(&store, "rt-old1").await, Some((None, None)));
        assert_eq!(refresh_state(&store, "rt-n1").await, None);

        // Rotated once: claimed with its kept response, the new pair stored, the grant used.
        let answer = store
            .rotate_refresh_guarded(rotation("old1", "n1", true), guard.clone(), now)
            .await
            .expect("rotate");
        assert_eq!(answer, Some(true), "{:?}", store.backend());
        assert_eq!(
            refresh_state(&store, "rt-old1").await,
            Some((Some(now), Some("sealed-n1".into())))
        );
        assert!(refresh_state(&store, "rt-n1").await.is_some());
        assert!(both(&store, "at-n1").await.is_some());
        let mut tx = store.read().await.expect("read");
        let g1 = tx.grants().get("g1").await.expect("grant").expect("found");
        assert_eq!(g1.last_used_at, Some(now));

        // The same token again: not claimed, nothing written.
        let answer = store
            .rotate_refresh_guarded(rotation("old1", "n2", true), guard.clone(), now + 1)
            .await
            .expect("again");
        assert_eq!(answer, Some(false));
        assert_eq!(refresh_state(&store, "rt-n2").await, None);
        assert!(both(&store, "at-n2").await.is_none());
        assert_eq!(
            refresh_state(&store, "rt-old1").await,
            Some((Some(now), Some("sealed-n1".into())))
        );

        // A client that stopped getting refresh tokens: the access token alone.
        let answer = store
            .rotate_refresh_guarded(rotation("old2", "n3", false), guard.clone(), now)
            .await
            .expect("no refresh");
        assert_eq!(answer, Some(true));
        assert!(both(&store, "at-n3").await.is_some());
        assert_eq!(refresh_state(&store, "rt-n3").await, None);
    }
}
