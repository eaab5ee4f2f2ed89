//! The janitor: deletes expired codes, tokens, flows, login sessions and assertion ids, in
//! bounded batches. Used refresh tokens stay until they expire, so that reuse is still detected;
//! the responses kept for their grace period are forgotten when it ends.

use serde::Serialize;

use crate::deps::Deps;
use crate::store::StoreError;

/// Batches per kind per run: bounds one run's work.
const MAX_BATCHES: u32 = 100;

/// Rows cleaned by one run, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JanitorReport {
    /// Kept refresh responses forgotten after their grace period.
    pub refresh_responses: u64,
    pub flows: u64,
    pub codes: u64,
    pub tokens: u64,
    pub login_sessions: u64,
    pub assertion_ids: u64,
    pub console_sessions: u64,
    pub login_throttle: u64,
    /// Expired logout requests, and the records of which apps took part in sessions that are
    /// gone.
    pub logout_requests: u64,
}

impl JanitorReport {
    pub fn total(&self) -> u64 {
        self.refresh_responses
            + self.flows
            + self.codes
            + self.tokens
            + self.login_sessions
            + self.assertion_ids
            + self.console_sessions
            + self.login_throttle
            + self.logout_requests
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RefreshResponses,
    Flows,
    Codes,
    Tokens,
    LoginSessions,
    AssertionIds,
    ConsoleSessions,
    LoginThrottle,
    LogoutRequests,
}

/// Cleans up, `batch` rows at a time (each batch its own transaction). Kept refresh responses
/// are forgotten once `refresh_window` seconds have passed since their rotation.
pub async fn run(
    deps: &Deps,
    batch: u32,
    refresh_window: i64,
) -> Result<JanitorReport, StoreError> {
    let now = deps.clock.now();
    let mut report = JanitorReport::default();
    for kind in [
        Kind::RefreshResponses,
        Kind::Flows,
        Kind::Codes,
        Kind::Tokens,
        Kind::LoginSessions,
        Kind::AssertionIds,
        Kind::ConsoleSessions,
        Kind::LoginThrottle,
        Kind::LogoutRequests,
    ] {
        let counter = match kind {
            Kind::RefreshResponses => &mut report.refresh_responses,
            Kind::Flows => &mut report.flows,
            Kind::Codes => &mut report.codes,
            Kind::Tokens => &mut report.tokens,
            Kind::LoginSessions => &mut report.login_sessions,
            Kind::AssertionIds => &mut report.assertion_ids,
            Kind::ConsoleSessions => &mut report.console_sessions,
            Kind::LoginThrottle => &mut report.login_throttle,
            Kind::LogoutRequests => &mut report.logout_requests,
        };
        for _ in 0..MAX_BATCHES {
            let mut tx = deps.store.begin().await?;
            let n = match kind {
                Kind::RefreshResponses => {
                    tx.tokens()
                        .expire_successors(now - refresh_window, batch)
                        .await?
                }
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
                Kind::LogoutRequests => tx.logouts().purge_expired_requests(now, batch).await?,
            };
            tx.commit().await?;
            *counter += n;
            if n < u64::from(batch) {
                break;
            }
        }
    }
    Ok(report)
}
