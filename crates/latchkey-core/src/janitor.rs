//! The janitor: deletes expired codes, tokens, flows, login sessions and assertion ids, in
//! bounded batches. Used refresh tokens stay until they expire, so that reuse is still detected.

use serde::Serialize;

use crate::deps::Deps;
use crate::store::StoreError;

/// Batches per table per run: bounds one run's work.
const MAX_BATCHES: u32 = 100;

/// Rows deleted by one run, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JanitorReport {
    pub flows: u64,
    pub codes: u64,
    pub tokens: u64,
    pub login_sessions: u64,
    pub assertion_ids: u64,
    pub console_sessions: u64,
    pub login_throttle: u64,
}

impl JanitorReport {
    pub fn total(&self) -> u64 {
        self.flows
            + self.codes
            + self.tokens
            + self.login_sessions
            + self.assertion_ids
            + self.console_sessions
            + self.login_throttle
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flows,
    Codes,
    Tokens,
    LoginSessions,
    AssertionIds,
    ConsoleSessions,
    LoginThrottle,
}

/// Deletes expired rows, `batch` at a time (each batch its own transaction).
pub async fn run(deps: &Deps, batch: u32) -> Result<JanitorReport, StoreError> {
    let now = deps.clock.now();
    let mut report = JanitorReport::default();
    for kind in [
        Kind::Flows,
        Kind::Codes,
        Kind::Tokens,
        Kind::LoginSessions,
        Kind::AssertionIds,
        Kind::ConsoleSessions,
        Kind::LoginThrottle,
    ] {
        for _ in 0..MAX_BATCHES {
            let mut tx = deps.store.begin().await?;
            let n = match kind {
                Kind::Flows => tx.flows().purge_expired(now, batch).await?,
                Kind::Codes => tx.codes().purge_expired(now, batch).await?,
                Kind::Tokens => tx.tokens().purge_expired(now, batch).await?,
                Kind::LoginSessions => tx.login_sessions().purge_expired(now, batch).await?,
                Kind::AssertionIds => tx.client_assertions().purge_expired(now, batch).await?,
                Kind::ConsoleSessions => tx.console_sessions().purge_expired(now, batch).await?,
                Kind::LoginThrottle => {
                    tx.login_throttle()
                        .purge(now - crate::platform::login::THROTTLE_MEMORY, batch)
                        .await?
                }
            };
            tx.commit().await?;
            match kind {
                Kind::Flows => report.flows += n,
                Kind::Codes => report.codes += n,
                Kind::Tokens => report.tokens += n,
                Kind::LoginSessions => report.login_sessions += n,
                Kind::AssertionIds => report.assertion_ids += n,
                Kind::ConsoleSessions => report.console_sessions += n,
                Kind::LoginThrottle => report.login_throttle += n,
            }
            if n < u64::from(batch) {
                break;
            }
        }
    }
    Ok(report)
}
