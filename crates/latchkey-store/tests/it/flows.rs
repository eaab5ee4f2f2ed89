//! The flow's store methods (`Store::flow`, `insert_flow`, `advance_flow`, `complete_consent`):
//! units of work around the core's one definition of each step; on both engines, the same
//! answers as the repository's transactions.

use latchkey_core::audit::{Actor, AuditEntry, AuditFilter};
use latchkey_core::client::ClientStatus;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::flow::{AuthRequest, FlowData, FlowRecord, FlowState};
use latchkey_core::oauth::records::{
    AuthorizationCode, CodeData, Grant, LoginSession, LoginSessionData, TokenClaims,
};
use latchkey_core::platform::model::{Account, AccountKind};
use latchkey_core::store::{
    ConsentCompleted, ConsentCompletion, FlowKey, FlowStep, Store, StoreWrites as _,
};
use latchkey_store::SqlStore;
use latchkey_types::Scope;
use latchkey_types::flow::OidcContext;

use crate::clients::sample;
use crate::stores;
use crate::tokens::grant;

pub fn flow(id: &str) -> FlowRecord {
    FlowRecord {
        id: id.into(),
        client_id: "client-1".into(),
        state: FlowState::LoginRequested,
        login_challenge: format!("lc-{id}"),
        login_verifier: None,
        consent_challenge: None,
        consent_verifier: None,
        csrf: "csrf-hash".into(),
        subject: None,
        data: FlowData {
            request: AuthRequest {
                client_id: "client-1".into(),
                redirect_uri: "https://app.example.com/cb".into(),
                redirect_uri_given: true,
                scope: Scope::parse("openid").expect("scope"),
                audience: vec![],
                state: Some("s-1".into()),
                nonce: None,
                code_challenge: Some("challenge".into()),
                prompt: vec![],
                max_age: None,
                oidc: OidcContext::default(),
                query: "client_id=client-1".into(),
                device_code: None,
            },
            login_skip: false,
            login_session_id: None,
            authenticated_at: None,
            login: None,
            consent_skip: false,
            consent: None,
            denial: None,
        },
        requested_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        expires_at: 1_700_000_600,
    }
}

pub fn session(id: &str) -> LoginSession {
    LoginSession {
        id: id.into(),
        cookie_hash: format!("cookie-{id}"),
        subject: "alice".into(),
        authenticated_at: 1_700_000_010,
        remember: false,
        data: LoginSessionData::default(),
        created_at: 1_700_000_010,
        expires_at: 1_700_003_600,
    }
}

pub async fn with_client(store: &SqlStore) {
    let mut tx = store.begin().await.expect("begin");
    tx.clients()
        .insert(&sample("client-1"))
        .await
        .expect("client");
    tx.commit().await.expect("commit");
}

/// `Store::flow` and the repository's `find` agree.
pub async fn found(store: &SqlStore, key: FlowKey, hash: &str) -> Option<FlowRecord> {
    let direct = store.flow(key, hash).await.expect("flow");
    let through_tx = store
        .read()
        .await
        .expect("read")
        .flows()
        .find(key, hash)
        .await
        .expect("find");
    assert_eq!(direct, through_tx, "{:?}", store.backend());
    direct
}

async fn session_exists(store: &SqlStore, id: &str) -> bool {
    let mut tx = store.read().await.expect("read");
    tx.login_sessions()
        .get(id)
        .await
        .expect("session")
        .is_some()
}

#[tokio::test]
async fn flow_steps_are_written_once_from_the_state_they_start_from() {
    for (_db, store) in stores().await {
        with_client(&store).await;

        store.insert_flow(flow("f1")).await.expect("insert");
        assert_eq!(
            found(&store, FlowKey::LoginChallenge, "lc-f1").await,
            Some(flow("f1"))
        );
        assert_eq!(found(&store, FlowKey::LoginVerifier, "lv-f1").await, None);

        // The login accepted: from LoginRequested, once, with its new session.
        let mut accepted = flow("f1");
        accepted.state = FlowState::LoginAccepted;
        accepted.login_verifier = Some("lv-f1".into());
        accepted.subject = Some("alice".into());
        accepted.updated_at = 1_700_000_010;
        let step = |session: Option<LoginSession>| FlowStep {
            flow: accepted.clone(),
            from: FlowState::LoginRequested,
            session,
        };
        assert!(store.advance_flow(step(None)).await.expect("advance"));
        assert_eq!(
            found(&store, FlowKey::LoginVerifier, "lv-f1").await,
            Some(accepted.clone())
        );
        // Again from the same state: nothing written, not even the session.
        let again = store.advance_flow(step(Some(session("s0")))).await;
        assert!(!again.expect("again"), "{:?}", store.backend());
        assert!(!session_exists(&store, "s0").await);

        // The verifier used: the transition and the session together.
        let mut verified = accepted.clone();
        verified.state = FlowState::ConsentRequested;
        verified.consent_challenge = Some("cc-f1".into());
        let next = FlowStep {
            flow: verified.clone(),
            from: FlowState::LoginAccepted,
            session: Some(session("s1")),
        };
        assert!(store.advance_flow(next).await.expect("verifier"));
        assert!(session_exists(&store, "s1").await);
        assert_eq!(
            found(&store, FlowKey::ConsentChallenge, "cc-f1").await,
            Some(verified)
        );

        // Concurrent steps from one state: exactly one is written.
        store.insert_flow(flow("f2")).await.expect("insert");
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let mut f = flow("f2");
                f.state = FlowState::LoginAccepted;
                f.login_verifier = Some(format!("lv-f2-{i}"));
                tokio::spawn(async move {
                    store
                        .advance_flow(FlowStep {
                            flow: f,
                            from: FlowState::LoginRequested,
                            session: Some(session(&format!("s2-{i}"))),
                        })
                        .await
                })
            })
            .collect();
        let mut won = Vec::new();
        for (i, call) in calls.into_iter().enumerate() {
            if call.await.expect("task").expect("advance") {
                won.push(i);
            }
        }
        assert_eq!(won.len(), 1, "{:?}", store.backend());
        for i in 0..8 {
            assert_eq!(
                session_exists(&store, &format!("s2-{i}")).await,
                won.contains(&i)
            );
        }
    }
}

fn completion(flow_id: &str, grant_id: &str, code: &str) -> ConsentCompletion {
    let mut done = flow(flow_id);
    done.state = FlowState::Done;
    ConsentCompletion {
        step: FlowStep {
            flow: done,
            from: FlowState::ConsentAccepted,
            session: None,
        },
        grant: Grant {
            scope: Scope::parse("openid").expect("scope"),
            created_at: 1_700_000_020,
            updated_at: 1_700_000_020,
            ..grant(grant_id, "alice")
        },
        code: AuthorizationCode {
            code_hash: TokenHash(code.into()),
            client_id: "client-1".into(),
            grant_id: grant_id.into(),
            family_id: format!("family-{code}"),
            data: CodeData {
                redirect_uri: "https://app.example.com/cb".into(),
                redirect_uri_given: true,
                code_challenge: None,
                nonce: None,
                subject: "alice".into(),
                scope: Scope::parse("openid").expect("scope"),
                audience: vec![],
                claims: TokenClaims::default(),
            },
            created_at: 1_700_000_020,
            expires_at: 1_700_000_620,
            consumed_at: None,
        },
        audit: AuditEntry {
            id: format!("audit-{code}"),
            occurred_at: 1_700_000_020,
            actor: Actor {
                kind: "user".into(),
                id: Some("alice".into()),
            },
            account_id: None,
            action: "grant.create".into(),
            target_kind: "grant".into(),
            target_id: grant_id.into(),
            details: serde_json::json!({}),
        },
        user_cap: None,
        device_code: None,
    }
}

/// A flow waiting for its consent verifier.
async fn consent_accepted(store: &SqlStore, id: &str) {
    store.insert_flow(flow(id)).await.expect("insert");
    let mut f = flow(id);
    f.state = FlowState::ConsentAccepted;
    let step = FlowStep {
        flow: f,
        from: FlowState::LoginRequested,
        session: None,
    };
    assert!(store.advance_flow(step).await.expect("accept"));
}

/// The store's audit entries (at most ten).
async fn audit_entries(store: &SqlStore) -> Vec<AuditEntry> {
    let mut tx = store.read().await.expect("read");
    tx.audit()
        .list(&AuditFilter::default(), 10)
        .await
        .expect("audit")
}

async fn code_grant(store: &SqlStore, code: &str) -> Option<String> {
    let found = store.authorization_code(&TokenHash(code.into())).await;
    found.expect("code").map(|c| c.grant_id)
}

/// `Store::complete_consent` (a unit of work around `write_consent`): all of it or nothing, and the
/// code and audit entry name the grant written; `Store::client` and `Store::active_grant` agree
/// with the repositories.
#[tokio::test]
async fn a_consent_is_completed_once_and_whole() {
    for (_db, store) in stores().await {
        with_client(&store).await;
        let mut tx = store.read().await.expect("read");
        let client = tx.clients().get("client-1").await.expect("get");
        assert_eq!(store.client("client-1").await.expect("client"), client);
        assert_eq!(store.client("missing").await.expect("client"), None);
        assert_eq!(
            store
                .active_grant("alice", "client-1")
                .await
                .expect("grant"),
            None
        );

        consent_accepted(&store, "f1").await;
        let done = store.complete_consent(completion("f1", "g1", "c1")).await;
        let expected = ConsentCompleted::Written {
            grant_id: "g1".into(),
        };
        assert_eq!(done.expect("complete"), expected, "{:?}", store.backend());
        assert_eq!(code_grant(&store, "c1").await.as_deref(), Some("g1"));
        let grant = store
            .active_grant("alice", "client-1")
            .await
            .expect("grant");
        let mut tx = store.read().await.expect("read");
        let through_tx = tx
            .grants()
            .active("alice", "client-1")
            .await
            .expect("active");
        assert_eq!(grant, through_tx);
        assert_eq!(grant.expect("grant").id, "g1");

        // The verifier again: nothing more.
        let again = store.complete_consent(completion("f1", "g9", "c9")).await;
        assert_eq!(again.expect("again"), ConsentCompleted::FlowUsed);
        assert_eq!(code_grant(&store, "c9").await, None);

        // A second consent of the same subject to the same client updates its grant in place:
        // the code and the audit entry name that grant, not the new id.
        consent_accepted(&store, "f2").await;
        let done = store.complete_consent(completion("f2", "g2", "c2")).await;
        assert_eq!(done.expect("complete"), expected);
        assert_eq!(code_grant(&store, "c2").await.as_deref(), Some("g1"));
        let entries = audit_entries(&store).await;
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.target_id == "g1"), "{entries:?}");
        // A client made through the admin API belongs to no account.
        assert!(
            entries.iter().all(|e| e.account_id.is_none()),
            "{entries:?}"
        );

        // The client suspended meanwhile: nothing is written, the flow stays where it was.
        consent_accepted(&store, "f3").await;
        let mut suspended = sample("client-1");
        suspended.status = ClientStatus::Suspended;
        let mut tx = store.begin().await.expect("begin");
        tx.clients().update(&suspended).await.expect("suspend");
        tx.commit().await.expect("commit");
        let gone = store.complete_consent(completion("f3", "g3", "c3")).await;
        assert_eq!(gone.expect("gone"), ConsentCompleted::ClientGone);
        assert_eq!(code_grant(&store, "c3").await, None);
        let f3 = store.flow(FlowKey::LoginChallenge, "lc-f3").await;
        assert_eq!(
            f3.expect("flow").expect("found").state,
            FlowState::ConsentAccepted
        );
    }
}

/// The account of a consent's audit entry is the one that owns the client, read by the store in
/// the unit of work that checks the client is active (the engine does not read the client first
/// and leaves the field empty): through the unit of work and through a transaction.
#[tokio::test]
async fn a_consent_is_audited_in_the_account_that_owns_the_client() {
    for (_db, store) in stores().await {
        let mut tx = store.begin().await.expect("begin");
        tx.accounts()
            .insert_account(&Account {
                id: "acct-1".into(),
                name: "Acme".into(),
                kind: AccountKind::Customer,
                block_third_party_apps: false,
                created_at: 100,
                updated_at: 100,
            })
            .await
            .expect("account");
        let mut owned = sample("client-1");
        owned.owner_account_id = Some("acct-1".into());
        tx.clients().insert(&owned).await.expect("client");
        tx.commit().await.expect("commit");

        consent_accepted(&store, "f1").await;
        let done = store.complete_consent(completion("f1", "g1", "c1")).await;
        assert!(
            matches!(done, Ok(ConsentCompleted::Written { .. })),
            "{done:?}"
        );
        consent_accepted(&store, "f2").await;
        let mut tx = store.begin().await.expect("begin");
        let done =
            latchkey_core::store::write_consent(tx.as_mut(), &completion("f2", "g2", "c2")).await;
        tx.commit().await.expect("commit");
        assert!(
            matches!(done, Ok(ConsentCompleted::Written { .. })),
            "{done:?}"
        );

        let entries = audit_entries(&store).await;
        let accounts: Vec<_> = entries.iter().map(|e| e.account_id.as_deref()).collect();
        assert_eq!(
            accounts,
            [Some("acct-1"), Some("acct-1")],
            "{:?}",
            store.backend()
        );
    }
}

/// SQLite's writer thread waits for a write lock another connection holds for a moment (the
/// checkpointer's `RESTART` pass, in the server) instead of failing the batch.
#[tokio::test]
async fn the_sqlite_writer_waits_for_a_lock_held_elsewhere() {
    let db = latchkey_store::testing::TestDatabase::sqlite();
    let store = db.migrated().await;
    with_client(&store).await;
    let path = db
        .url
        .strip_prefix("sqlite://")
        .and_then(|u| u.split('?').next())
        .expect("a SQLite URL")
        .to_owned();
    let (locked, wait_for_lock) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch("BEGIN IMMEDIATE").expect("write lock");
        locked.send(()).expect("signal");
        std::thread::sleep(std::time::Duration::from_millis(30));
        conn.execute_batch("COMMIT").expect("release");
    });
    wait_for_lock.recv().expect("the lock is held");
    store
        .insert_flow(flow("f-busy"))
        .await
        .expect("the write waits for the lock");
    holder.join().expect("holder");
    assert_eq!(
        found(&store, FlowKey::LoginChallenge, "lc-f-busy").await,
        Some(flow("f-busy"))
    );
}

/// The cap of users of an unverified app holds inside the consent's write: of many users
/// completing their consents at once, no more than the cap get a grant, on either engine.
#[tokio::test]
async fn concurrent_consents_never_exceed_the_user_cap() {
    const USERS: usize = 12;
    const CAP: i64 = 3;
    for (_db, store) in stores().await {
        with_client(&store).await;
        let mut completions = Vec::new();
        for i in 0..USERS {
            let id = format!("f{i}");
            consent_accepted(&store, &id).await;
            let subject = format!("user-{i}");
            let mut c = completion(&id, &format!("g{i}"), &format!("c{i}"));
            c.grant.subject.clone_from(&subject);
            c.code.data.subject = subject;
            c.user_cap = Some(CAP);
            completions.push(c);
        }
        let answers = futures_util::future::join_all(completions.into_iter().map(|c| {
            let store = store.clone();
            async move { store.complete_consent(c).await.expect("completes") }
        }))
        .await;
        let written = answers
            .iter()
            .filter(|a| matches!(a, ConsentCompleted::Written { .. }))
            .count();
        let refused = answers
            .iter()
            .filter(|a| **a == ConsentCompleted::AtUserCap)
            .count();
        assert_eq!(
            (written, refused),
            (CAP as usize, USERS - CAP as usize),
            "{:?}",
            store.backend()
        );
        let mut tx = store.read().await.expect("read");
        assert_eq!(tx.apps().user_count("client-1").await.expect("count"), CAP);
    }
}
