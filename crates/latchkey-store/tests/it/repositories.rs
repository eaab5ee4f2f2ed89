//! Repository methods the services reach only inside the store's own use cases (or not through
//! the store's tests at all), called directly in a transaction on each engine, against the
//! contract of their doc comments in `latchkey_core::store`.

use latchkey_core::client::cache::ClientGuard;
use latchkey_core::client::{Client, ClientSecretRecord, ClientStatus};
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::flow::FlowState;
use latchkey_core::oauth::records::{AccessTokenRecord, Grant, LoginSession, RefreshTokenRecord};
use latchkey_core::platform::model::{Account, AccountKind, Visibility};
use latchkey_core::store::{FlowKey, Store};
use latchkey_store::SqlStore;

use crate::clients::sample;
use crate::flows::{flow, session};
use crate::platform::{account, profile};
use crate::stores;
use crate::tokens::{code, exchange, grant, token};

const NOW: i64 = 1_700_000_100;

/// Stores the clients `ids` (each [`sample`]).
async fn with_clients(store: &SqlStore, ids: &[&str]) {
    let mut tx = store.begin().await.expect("begin");
    for id in ids {
        tx.clients().insert(&sample(id)).await.expect("client");
    }
    tx.commit().await.expect("commit");
}

/// The refresh token `rt-{name}` of `client-1` under the grant `grant_id`: used at `used_at`,
/// its response kept, when given.
fn refresh(name: &str, grant_id: Option<&str>, used_at: Option<i64>) -> RefreshTokenRecord {
    let record = exchange(name, "unused", true).refresh.expect("refresh");
    RefreshTokenRecord {
        grant_id: grant_id.map(Into::into),
        used_at,
        successor: used_at.map(|_| format!("sealed-{name}")),
        ..record
    }
}

/// The access token `hash` of `client_id` under the grant `grant_id`.
fn access(hash: &str, client_id: &str, grant_id: Option<&str>) -> AccessTokenRecord {
    AccessTokenRecord {
        client_id: client_id.into(),
        grant_id: grant_id.map(Into::into),
        ..token(hash)
    }
}

async fn stored_refresh(store: &SqlStore, hash: &str) -> RefreshTokenRecord {
    let mut tx = store.read().await.expect("read");
    let found = tx.tokens().refresh(&TokenHash(hash.into())).await;
    found.expect("refresh").expect("found").token
}

async fn stored_access(store: &SqlStore, hash: &str) -> AccessTokenRecord {
    let mut tx = store.read().await.expect("read");
    let found = tx.tokens().access(&TokenHash(hash.into())).await;
    found.expect("access").expect("found").token
}

async fn stored_grant(store: &SqlStore, id: &str) -> Grant {
    let mut tx = store.read().await.expect("read");
    tx.grants().get(id).await.expect("grant").expect("found")
}

async fn guard_holds(store: &SqlStore, guard: &ClientGuard, now: i64) -> bool {
    let mut tx = store.begin().await.expect("begin");
    tx.clients().guard_holds(guard, now).await.expect("guard")
}

/// `ClientRepository::guard_holds`: true while the client exists, is active, is the version
/// cached, and the secret that matched (if any) is the client's, exists and has not expired.
#[tokio::test]
async fn a_client_guard_holds_only_while_what_it_rests_on_holds() {
    for (_db, store) in stores().await {
        let client = sample("client-1");
        with_clients(&store, &["client-1", "client-2"]).await;
        let mut tx = store.begin().await.expect("begin");
        for (id, client_id, expires_at) in [
            ("forever", "client-1", None),
            ("expiring", "client-1", Some(NOW + 100)),
            ("expired", "client-1", Some(NOW - 1)),
            ("theirs", "client-2", None),
        ] {
            let secret = ClientSecretRecord {
                id: id.into(),
                client_id: client_id.into(),
                secret_hash: format!("sha256${id}"),
                created_at: 1_700_000_000,
                expires_at,
            };
            tx.clients().insert_secret(&secret).await.expect("secret");
        }
        tx.commit().await.expect("commit");
        let guard = |secret: Option<&str>| ClientGuard {
            client_id: client.id.clone(),
            updated_at: client.updated_at,
            secret_id: secret.map(Into::into),
        };
        let backend = store.backend();

        for secret in [None, Some("forever"), Some("expiring")] {
            assert!(
                guard_holds(&store, &guard(secret), NOW).await,
                "{backend:?}: {secret:?}"
            );
        }
        // A secret that expired (at its `expires_at`, as client authentication counts it, or
        // later), another client's, or none at all.
        for (secret, now) in [
            ("expiring", NOW + 100),
            ("expiring", NOW + 101),
            ("expired", NOW),
            ("theirs", NOW),
            ("missing", NOW),
        ] {
            assert!(
                !guard_holds(&store, &guard(Some(secret)), now).await,
                "{backend:?}: {secret} at {now}"
            );
        }
        // The row changed since it was cached, either way; a client that does not exist.
        for (client_id, updated_at) in [
            ("client-1", client.updated_at - 1),
            ("client-1", client.updated_at + 1),
            ("missing", client.updated_at),
        ] {
            let other = ClientGuard {
                client_id: client_id.into(),
                updated_at,
                secret_id: None,
            };
            assert!(
                !guard_holds(&store, &other, NOW).await,
                "{backend:?}: {other:?}"
            );
        }

        // The secret deleted.
        let mut tx = store.begin().await.expect("begin");
        let deleted = tx.clients().delete_secret("client-1", "forever").await;
        assert!(deleted.expect("delete"));
        tx.commit().await.expect("commit");
        assert!(
            !guard_holds(&store, &guard(Some("forever")), NOW).await,
            "{backend:?}: a deleted secret"
        );
        assert!(guard_holds(&store, &guard(None), NOW).await, "{backend:?}");

        // The client suspended, its `updated_at` kept: only its status changed.
        let suspended = Client {
            status: ClientStatus::Suspended,
            ..client.clone()
        };
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.clients().update(&suspended).await.expect("suspend"));
        tx.commit().await.expect("commit");
        for secret in [None, Some("expiring")] {
            assert!(
                !guard_holds(&store, &guard(secret), NOW).await,
                "{backend:?}: a suspended client, {secret:?}"
            );
        }
    }
}

async fn stored_session(store: &SqlStore, id: &str) -> Option<LoginSession> {
    let mut tx = store.read().await.expect("read");
    tx.login_sessions().get(id).await.expect("session")
}

/// `LoginSessionRepository::extend` moves one session's expiry (false when it does not exist);
/// `delete_by_subject` ends every session of one subject and says how many.
#[tokio::test]
async fn login_sessions_are_extended_one_by_one_and_ended_by_subject() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        let bob = LoginSession {
            subject: "bob".into(),
            ..session("s3")
        };
        let mut tx = store.begin().await.expect("begin");
        for s in [session("s1"), session("s2"), bob.clone()] {
            tx.login_sessions().insert(&s).await.expect("session");
        }
        tx.commit().await.expect("commit");
        let expiry = session("s1").expires_at;
        let later = expiry + 3_600;

        let mut tx = store.begin().await.expect("begin");
        let extended = tx.login_sessions().extend("s1", later).await;
        assert!(extended.expect("extend"), "{backend:?}");
        let missing = tx.login_sessions().extend("missing", later).await;
        assert!(!missing.expect("extend"), "{backend:?}");
        tx.commit().await.expect("commit");
        let s1 = stored_session(&store, "s1").await.expect("s1");
        assert_eq!(
            s1,
            LoginSession {
                expires_at: later,
                ..session("s1")
            },
            "{backend:?}"
        );
        let s2 = stored_session(&store, "s2").await.expect("s2");
        assert_eq!(s2.expires_at, expiry, "{backend:?}: only s1 moved");
        // The cookie of the extended session still finds it past its former expiry.
        let mut tx = store.read().await.expect("read");
        let by_cookie = tx.login_sessions().by_cookie("cookie-s1", expiry + 1).await;
        assert_eq!(
            by_cookie.expect("by_cookie").map(|s| s.id),
            Some("s1".into())
        );
        drop(tx);

        let mut tx = store.begin().await.expect("begin");
        let ended = tx.login_sessions().delete_by_subject("alice").await;
        assert_eq!(ended.expect("delete"), 2, "{backend:?}");
        let again = tx.login_sessions().delete_by_subject("alice").await;
        assert_eq!(again.expect("delete"), 0, "{backend:?}");
        let nobody = tx.login_sessions().delete_by_subject("nobody").await;
        assert_eq!(nobody.expect("delete"), 0, "{backend:?}");
        tx.commit().await.expect("commit");
        for id in ["s1", "s2"] {
            assert_eq!(stored_session(&store, id).await, None, "{backend:?}: {id}");
        }
        assert_eq!(stored_session(&store, "s3").await, Some(bob), "{backend:?}");
        let mut tx = store.begin().await.expect("begin");
        let gone = tx.login_sessions().extend("s1", later).await;
        assert!(!gone.expect("extend"), "{backend:?}: an ended session");
    }
}

/// `FlowRepository::transition` writes the flow only from the state it is in, once.
#[tokio::test]
async fn a_flow_transitions_only_from_the_state_it_is_in() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_clients(&store, &["client-1"]).await;
        let mut tx = store.begin().await.expect("begin");
        for id in ["f1", "f2"] {
            tx.flows().insert(&flow(id)).await.expect("flow");
        }
        tx.commit().await.expect("commit");
        let mut accepted = flow("f1");
        accepted.state = FlowState::LoginAccepted;
        accepted.login_verifier = Some("lv-f1".into());
        accepted.subject = Some("alice".into());
        accepted.data.authenticated_at = Some(1_700_000_010);
        accepted.updated_at = 1_700_000_010;
        let stored = |key: FlowKey, hash: &'static str| {
            let store = store.clone();
            async move {
                let mut tx = store.read().await.expect("read");
                tx.flows().find(key, hash).await.expect("find")
            }
        };

        // From a state it is not in: nothing written.
        let mut tx = store.begin().await.expect("begin");
        let wrong = tx
            .flows()
            .transition(&accepted, FlowState::ConsentRequested)
            .await;
        assert!(!wrong.expect("transition"), "{backend:?}");
        tx.commit().await.expect("commit");
        assert_eq!(
            stored(FlowKey::LoginChallenge, "lc-f1").await,
            Some(flow("f1")),
            "{backend:?}"
        );

        // From its state: written, all of it, and only that flow.
        let mut tx = store.begin().await.expect("begin");
        let moved = tx
            .flows()
            .transition(&accepted, FlowState::LoginRequested)
            .await;
        assert!(moved.expect("transition"), "{backend:?}");
        tx.commit().await.expect("commit");
        assert_eq!(
            stored(FlowKey::LoginVerifier, "lv-f1").await,
            Some(accepted.clone()),
            "{backend:?}"
        );
        assert_eq!(
            stored(FlowKey::LoginChallenge, "lc-f2").await,
            Some(flow("f2")),
            "{backend:?}"
        );

        // The same step again, as a second request would: refused, the first one stays.
        let mut replay = accepted.clone();
        replay.login_verifier = Some("lv-f1-again".into());
        replay.subject = Some("mallory".into());
        let mut tx = store.begin().await.expect("begin");
        let again = tx
            .flows()
            .transition(&replay, FlowState::LoginRequested)
            .await;
        assert!(!again.expect("transition"), "{backend:?}");
        let missing = tx
            .flows()
            .transition(&flow("missing"), FlowState::LoginRequested)
            .await;
        assert!(!missing.expect("transition"), "{backend:?}");
        tx.commit().await.expect("commit");
        assert_eq!(
            stored(FlowKey::LoginVerifier, "lv-f1-again").await,
            None,
            "{backend:?}"
        );
        assert_eq!(
            stored(FlowKey::LoginChallenge, "lc-f1").await,
            Some(accepted),
            "{backend:?}"
        );
    }
}

/// `GrantRepository::list_active` (a subject's unrevoked grants, newest first) and `touch`
/// (records a use of an unrevoked grant; false, and nothing written, for a revoked or missing
/// one).
#[tokio::test]
async fn active_grants_are_listed_newest_first_and_only_they_are_touched() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_clients(&store, &["client-1", "client-2", "client-3"]).await;
        let mut tx = store.begin().await.expect("begin");
        for (id, subject, client_id, created_at) in [
            ("g1", "alice", "client-1", 1_700_000_000),
            ("g2", "alice", "client-2", 1_700_000_300),
            ("g3", "alice", "client-3", 1_700_000_200),
            ("g4", "bob", "client-1", 1_700_000_400),
        ] {
            let g = Grant {
                client_id: client_id.into(),
                created_at,
                updated_at: created_at,
                ..grant(id, subject)
            };
            let written = tx.grants().upsert_active(&g).await;
            assert_eq!(written.expect("grant"), id);
        }
        assert!(tx.grants().touch("g3", NOW).await.expect("touch"));
        tx.commit().await.expect("commit");

        let listed = |subject: &'static str| {
            let store = store.clone();
            async move {
                let mut tx = store.read().await.expect("read");
                let grants = tx.grants().list_active(subject).await.expect("list");
                grants.into_iter().map(|g| g.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(listed("alice").await, ["g2", "g3", "g1"], "{backend:?}");
        assert_eq!(listed("bob").await, ["g4"], "{backend:?}");
        assert!(listed("nobody").await.is_empty(), "{backend:?}");

        let mut tx = store.begin().await.expect("begin");
        let revoked = tx
            .grants()
            .revoke_for_subject("alice", Some("client-3"), NOW + 1)
            .await;
        assert_eq!(revoked.expect("revoke"), ["g3"]);
        tx.commit().await.expect("commit");
        assert_eq!(listed("alice").await, ["g2", "g1"], "{backend:?}");

        let mut tx = store.begin().await.expect("begin");
        for (id, expected) in [("g1", true), ("g3", false), ("missing", false)] {
            let touched = tx.grants().touch(id, NOW + 10).await;
            assert_eq!(touched.expect("touch"), expected, "{backend:?}: {id}");
        }
        tx.commit().await.expect("commit");
        assert_eq!(
            stored_grant(&store, "g1").await.last_used_at,
            Some(NOW + 10),
            "{backend:?}"
        );
        let g3 = stored_grant(&store, "g3").await;
        assert_eq!(
            (g3.last_used_at, g3.revoked_at),
            (Some(NOW), Some(NOW + 1)),
            "{backend:?}: a revoked grant keeps its last use"
        );
        assert_eq!(
            stored_grant(&store, "g2").await.last_used_at,
            None,
            "{backend:?}"
        );
    }
}

/// `CodeRepository::consume` marks a code consumed once; a second consume is refused and keeps
/// the first time.
#[tokio::test]
async fn a_code_is_consumed_once() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_clients(&store, &["client-1"]).await;
        let mut tx = store.begin().await.expect("begin");
        let id = tx.grants().upsert_active(&grant("g1", "alice")).await;
        assert_eq!(id.expect("grant"), "g1");
        for c in ["c1", "c2"] {
            tx.codes().insert(&code(c, "g1")).await.expect("code");
        }
        tx.commit().await.expect("commit");
        let consumed_at = |hash: &'static str| {
            let store = store.clone();
            async move {
                let found = store.authorization_code(&TokenHash(hash.into())).await;
                found.expect("code").expect("found").consumed_at
            }
        };

        let mut tx = store.begin().await.expect("begin");
        let first = tx.codes().consume(&TokenHash("c1".into()), NOW).await;
        assert!(first.expect("consume"), "{backend:?}");
        let second = tx.codes().consume(&TokenHash("c1".into()), NOW + 1).await;
        assert!(!second.expect("consume"), "{backend:?}: consumed twice");
        let missing = tx.codes().consume(&TokenHash("missing".into()), NOW).await;
        assert!(!missing.expect("consume"), "{backend:?}");
        tx.commit().await.expect("commit");
        assert_eq!(consumed_at("c1").await, Some(NOW), "{backend:?}");
        assert_eq!(consumed_at("c2").await, None, "{backend:?}");

        // In a later transaction too.
        let mut tx = store.begin().await.expect("begin");
        let later = tx.codes().consume(&TokenHash("c1".into()), NOW + 2).await;
        assert!(!later.expect("consume"), "{backend:?}");
        tx.commit().await.expect("commit");
        assert_eq!(consumed_at("c1").await, Some(NOW), "{backend:?}");
    }
}

/// `TokenRepository::count_reuse` counts retries of a used token whose response is kept, up to
/// `max`; false for a revoked token, one without a kept response, or none.
#[tokio::test]
async fn reuses_are_counted_up_to_max_for_kept_responses_only() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_clients(&store, &["client-1"]).await;
        let revoked = RefreshTokenRecord {
            revoked_at: Some(NOW),
            ..refresh("revoked", None, Some(NOW))
        };
        let mut tx = store.begin().await.expect("begin");
        for r in [
            refresh("kept", None, Some(NOW)),
            refresh("fresh", None, None),
            revoked,
        ] {
            tx.tokens().insert_refresh(&r).await.expect("refresh");
        }
        tx.commit().await.expect("commit");
        let count = |hash: &'static str, max: u32| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.expect("begin");
                let counted = tx.tokens().count_reuse(&TokenHash(hash.into()), max).await;
                tx.commit().await.expect("commit");
                counted.expect("count_reuse")
            }
        };

        for expected in [true, true, false, false] {
            assert_eq!(count("rt-kept", 2).await, expected, "{backend:?}");
        }
        assert_eq!(stored_refresh(&store, "rt-kept").await.reuse_count, 2);
        // `max` is the caller's: a larger one allows more.
        assert!(count("rt-kept", 3).await, "{backend:?}");
        assert!(!count("rt-kept", 3).await, "{backend:?}");
        assert!(!count("rt-kept", 0).await, "{backend:?}");
        assert_eq!(stored_refresh(&store, "rt-kept").await.reuse_count, 3);

        for hash in ["rt-fresh", "rt-revoked", "rt-missing"] {
            assert!(!count(hash, 5).await, "{backend:?}: {hash}");
        }
        for hash in ["rt-fresh", "rt-revoked"] {
            let found = stored_refresh(&store, hash).await;
            assert_eq!(found.reuse_count, 0, "{backend:?}: {hash}");
        }

        // Revoked after it was counted: its family revoked drops the response, and no more.
        let mut tx = store.begin().await.expect("begin");
        let n = tx.tokens().revoke_family("family-kept", NOW + 1).await;
        assert_eq!(n.expect("revoke"), 1);
        tx.commit().await.expect("commit");
        assert!(!count("rt-kept", 10).await, "{backend:?}");
        assert_eq!(stored_refresh(&store, "rt-kept").await.reuse_count, 3);
    }
}

/// `TokenRepository::expire_successors` forgets the kept responses of tokens used before
/// `used_before`, at most `limit` a call, and says how many.
#[tokio::test]
async fn kept_responses_expire_by_time_of_use_up_to_limit() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_clients(&store, &["client-1"]).await;
        let cutoff = NOW + 300;
        let mut tx = store.begin().await.expect("begin");
        for (name, used_at) in [
            ("old1", Some(NOW)),
            ("old2", Some(NOW + 100)),
            ("old3", Some(NOW + 200)),
            ("at-cutoff", Some(cutoff)),
            ("recent", Some(cutoff + 100)),
            ("unused", None),
        ] {
            let r = refresh(name, None, used_at);
            tx.tokens().insert_refresh(&r).await.expect("refresh");
        }
        tx.commit().await.expect("commit");
        let expire = |limit: u32| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.expect("begin");
                let n = tx.tokens().expire_successors(cutoff, limit).await;
                tx.commit().await.expect("commit");
                n.expect("expire")
            }
        };
        let kept = |names: &'static [&'static str]| {
            let store = store.clone();
            async move {
                let mut out = Vec::new();
                for name in names {
                    let found = stored_refresh(&store, &format!("rt-{name}")).await;
                    if found.successor.is_some() {
                        out.push(*name);
                    }
                }
                out
            }
        };
        const OLD: &[&str] = &["old1", "old2", "old3"];

        assert_eq!(expire(2).await, 2, "{backend:?}");
        assert_eq!(kept(OLD).await.len(), 1, "{backend:?}");
        assert_eq!(expire(10).await, 1, "{backend:?}");
        assert!(kept(OLD).await.is_empty(), "{backend:?}");
        assert_eq!(expire(10).await, 0, "{backend:?}");
        assert_eq!(
            kept(&["at-cutoff", "recent"]).await,
            ["at-cutoff", "recent"],
            "{backend:?}: used at or after the cutoff"
        );
        // Only the response goes: the token stays used, and a retry of it is no longer counted.
        let old1 = stored_refresh(&store, "rt-old1").await;
        assert_eq!((old1.used_at, old1.revoked_at), (Some(NOW), None));
        let mut tx = store.begin().await.expect("begin");
        let counted = tx
            .tokens()
            .count_reuse(&TokenHash("rt-old1".into()), 5)
            .await;
        assert!(!counted.expect("count_reuse"), "{backend:?}");
    }
}

/// The tokens `revoke_grant` and `revoke_client` are tried on: for each of `grants` (all of
/// `client-1`), an access and a refresh token with a kept response; for `client-2`, the same
/// without a grant; an access token of `client-1` without a grant; and one of `g1` already
/// revoked.
async fn with_tokens(store: &SqlStore) {
    with_clients(store, &["client-1", "client-2"]).await;
    let mut tx = store.begin().await.expect("begin");
    for (id, subject) in [("g1", "alice"), ("g2", "bob")] {
        let written = tx.grants().upsert_active(&grant(id, subject)).await;
        assert_eq!(written.expect("grant"), id);
        let a = access(&format!("at-{id}"), "client-1", Some(id));
        tx.tokens().insert_access(&a).await.expect("access");
        let r = refresh(id, Some(id), Some(NOW - 10));
        tx.tokens().insert_refresh(&r).await.expect("refresh");
    }
    let earlier = AccessTokenRecord {
        revoked_at: Some(NOW - 5),
        ..access("at-g1-revoked", "client-1", Some("g1"))
    };
    let other_client = RefreshTokenRecord {
        client_id: "client-2".into(),
        ..refresh("c2", None, Some(NOW - 10))
    };
    for a in [
        earlier,
        access("at-c1", "client-1", None),
        access("at-c2", "client-2", None),
    ] {
        tx.tokens().insert_access(&a).await.expect("access");
    }
    tx.tokens()
        .insert_refresh(&other_client)
        .await
        .expect("refresh");
    tx.commit().await.expect("commit");
}

/// The state of the tokens of [`with_tokens`]: each access token's `revoked_at`, each refresh
/// token's `revoked_at` and whether its response is still kept.
async fn token_states(store: &SqlStore) -> Vec<(&'static str, Option<i64>, bool)> {
    let mut out = Vec::new();
    for hash in ["at-g1", "at-g1-revoked", "at-g2", "at-c1", "at-c2"] {
        out.push((hash, stored_access(store, hash).await.revoked_at, false));
    }
    for hash in ["rt-g1", "rt-g2", "rt-c2"] {
        let r = stored_refresh(store, hash).await;
        out.push((hash, r.revoked_at, r.successor.is_some()));
    }
    out
}

/// `TokenRepository::revoke_grant` revokes the access and refresh tokens of that grant, and no
/// other, dropping their kept responses; it counts only what it revoked.
#[tokio::test]
async fn revoking_a_grant_takes_its_tokens_and_nothing_else() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_tokens(&store).await;
        let mut tx = store.begin().await.expect("begin");
        let n = tx.tokens().revoke_grant("g1", NOW).await;
        assert_eq!(n.expect("revoke"), 2, "{backend:?}");
        let again = tx.tokens().revoke_grant("g1", NOW + 1).await;
        assert_eq!(again.expect("revoke"), 0, "{backend:?}");
        let missing = tx.tokens().revoke_grant("missing", NOW).await;
        assert_eq!(missing.expect("revoke"), 0, "{backend:?}");
        tx.commit().await.expect("commit");
        assert_eq!(
            token_states(&store).await,
            [
                ("at-g1", Some(NOW), false),
                ("at-g1-revoked", Some(NOW - 5), false),
                ("at-g2", None, false),
                ("at-c1", None, false),
                ("at-c2", None, false),
                ("rt-g1", Some(NOW), false),
                ("rt-g2", None, true),
                ("rt-c2", None, true),
            ],
            "{backend:?}"
        );
    }
}

/// `TokenRepository::revoke_client` revokes every access and refresh token of that client,
/// whatever their grant, and no other client's, dropping their kept responses.
#[tokio::test]
async fn revoking_a_client_takes_its_tokens_and_nothing_else() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_tokens(&store).await;
        let mut tx = store.begin().await.expect("begin");
        let n = tx.tokens().revoke_client("client-1", NOW).await;
        assert_eq!(n.expect("revoke"), 5, "{backend:?}");
        let again = tx.tokens().revoke_client("client-1", NOW + 1).await;
        assert_eq!(again.expect("revoke"), 0, "{backend:?}");
        let missing = tx.tokens().revoke_client("missing", NOW).await;
        assert_eq!(missing.expect("revoke"), 0, "{backend:?}");
        tx.commit().await.expect("commit");
        assert_eq!(
            token_states(&store).await,
            [
                ("at-g1", Some(NOW), false),
                ("at-g1-revoked", Some(NOW - 5), false),
                ("at-g2", Some(NOW), false),
                ("at-c1", Some(NOW), false),
                ("at-c2", None, false),
                ("rt-g1", Some(NOW), false),
                ("rt-g2", Some(NOW), false),
                ("rt-c2", None, true),
            ],
            "{backend:?}"
        );
    }
}

/// `ClientAssertionRepository::record_jti` is true the first time a `jti` is seen, false after,
/// in the same transaction or a later one.
#[tokio::test]
async fn an_assertion_jti_is_recorded_once() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        with_clients(&store, &["client-1"]).await;
        let expires_at = NOW + 360;
        let mut tx = store.begin().await.expect("begin");
        for (jti, expected) in [("j1", true), ("j1", false), ("j2", true)] {
            let recorded = tx
                .client_assertions()
                .record_jti(jti, "client-1", expires_at);
            assert_eq!(
                recorded.await.expect("record"),
                expected,
                "{backend:?}: {jti}"
            );
        }
        tx.commit().await.expect("commit");
        let mut tx = store.begin().await.expect("begin");
        for jti in ["j1", "j2"] {
            let recorded = tx
                .client_assertions()
                .record_jti(jti, "client-1", expires_at + 60)
                .await;
            assert!(!recorded.expect("record"), "{backend:?}: {jti} again");
        }
        tx.commit().await.expect("commit");
        // Until it expires: the record purged after its expiry, the jti is new again.
        let mut tx = store.begin().await.expect("begin");
        let purged = tx
            .client_assertions()
            .purge_expired(expires_at + 1, 10)
            .await;
        assert_eq!(purged.expect("purge"), 2, "{backend:?}");
        let recorded = tx
            .client_assertions()
            .record_jti("j1", "client-1", expires_at + 400)
            .await;
        assert!(recorded.expect("record"), "{backend:?}");
        tx.commit().await.expect("commit");
    }
}

/// `AppRepository::trusted_names`: the names of verified, public and first-party apps (owned by
/// a platform account), each with why, other than `except`; a private app of a customer is not
/// one of them.
#[tokio::test]
async fn trusted_names_are_those_of_verified_public_and_first_party_apps() {
    for (_db, store) in stores().await {
        let backend = store.backend();
        let mut tx = store.begin().await.expect("begin");
        let platform = Account {
            kind: AccountKind::Platform,
            ..account("ops", "Operator")
        };
        tx.accounts()
            .insert_account(&platform)
            .await
            .expect("account");
        tx.accounts()
            .insert_account(&account("acme", "Acme"))
            .await
            .expect("account");
        // (client, owner, public, verified domain)
        for (id, owner, public, domain) in [
            ("own", "ops", false, None),
            ("verified", "acme", false, Some("verified.example")),
            ("public", "acme", true, None),
            ("private", "acme", false, None),
            ("both", "acme", true, Some("both.example")),
        ] {
            let mut client = sample(id);
            client.owner_account_id = Some(owner.into());
            tx.clients().insert(&client).await.expect("client");
            let mut app = profile(id, owner);
            if public {
                app.visibility = Visibility::Public;
            }
            if let Some(domain) = domain {
                app.domain = Some(domain.into());
                app.domain_verified_at = Some(300);
            }
            tx.apps().insert(&app).await.expect("app");
        }
        tx.commit().await.expect("commit");
        let trusted = |except: Option<&'static str>| {
            let store = store.clone();
            async move {
                let mut tx = store.read().await.expect("read");
                let mut names = tx.apps().trusted_names(except).await.expect("names");
                names.sort();
                names
            }
        };
        let pair = |id: &str, standing: &str| (format!("App {id}"), standing.to_owned());
        let all = vec![
            pair("both", "verified"),
            pair("own", "first-party"),
            pair("public", "public"),
            pair("verified", "verified"),
        ];

        assert_eq!(trusted(None).await, all, "{backend:?}");
        assert_eq!(trusted(Some("private")).await, all, "{backend:?}");
        assert_eq!(trusted(Some("missing")).await, all, "{backend:?}");
        for except in ["both", "own", "public", "verified"] {
            let expected: Vec<_> = all
                .iter()
                .filter(|(name, _)| *name != format!("App {except}"))
                .cloned()
                .collect();
            assert_eq!(
                trusted(Some(except)).await,
                expected,
                "{backend:?}: except {except}"
            );
        }
    }
}
