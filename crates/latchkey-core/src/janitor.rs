//! The janitor: deletes rows that are provably dead, in bounded batches (each batch its own
//! transaction), and nothing else. What "dead" means for each kind is defined once, in the
//! store's `JanitorRepository` (`crates/latchkey-store/src/janitor.rs`), from the cutoffs below:
//!
//! | kind | dead when |
//! | --- | --- |
//! | kept refresh responses | the refresh grace period since the rotation is over (the column is cleared, the token stays) |
//! | flows, codes, access tokens, login and console sessions, assertion ids | expired |
//! | refresh tokens | expired, and so is every access and refresh token of its family: a used refresh token stays while a replay of it could still revoke a live token (reuse detection) |
//! | login throttle | its last failure and its block are older than the throttle's memory |
//! | revocation log | older than `revocation_log.retention`, and never the newest entry (the cursor never goes back) |
//!
//! Grants, consents, clients, secrets, keys, accounts and users are never deleted by the janitor.
//! `latchkey janitor --dry-run` counts what a run would delete, by kind, and deletes nothing.

use serde::Serialize;

use crate::clock::UnixTime;
use crate::deps::Deps;
use crate::store::StoreError;

/// Batches per kind per run: bounds one run's work.
const MAX_BATCHES: u32 = 100;

/// What the janitor may delete: one kind of dead row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadKind {
    RefreshResponses,
    Flows,
    Codes,
    AccessTokens,
    RefreshTokens,
    LoginSessions,
    AssertionIds,
    ConsoleSessions,
    LoginThrottle,
    RevocationLog,
    /// Dynamically registered clients that never got a flow, a grant or a token.
    UnusedRegistrations,
    /// Device codes (RFC 8628) and their verification challenges, expired.
    DeviceCodes,
    DeviceChallenges,
}

impl DeadKind {
    pub const ALL: [Self; 13] = [
        Self::RefreshResponses,
        Self::Flows,
        Self::Codes,
        Self::AccessTokens,
        Self::RefreshTokens,
        Self::LoginSessions,
        Self::AssertionIds,
        Self::ConsoleSessions,
        Self::LoginThrottle,
        Self::RevocationLog,
        Self::UnusedRegistrations,
        Self::DeviceCodes,
        Self::DeviceChallenges,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshResponses => "refresh_responses",
            Self::Flows => "flows",
            Self::Codes => "codes",
            Self::AccessTokens => "access_tokens",
            Self::RefreshTokens => "refresh_tokens",
            Self::LoginSessions => "login_sessions",
            Self::AssertionIds => "assertion_ids",
            Self::ConsoleSessions => "console_sessions",
            Self::LoginThrottle => "login_throttle",
            Self::RevocationLog => "revocation_log",
            Self::UnusedRegistrations => "unused_registrations",
            Self::DeviceCodes => "device_codes",
            Self::DeviceChallenges => "device_challenges",
        }
    }
}

/// The moments a row must be older than to be dead, computed once per run from the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Now: what expired at or before it is expired.
    pub now: UnixTime,
    /// A kept refresh response is forgotten when its token was used before this.
    pub refresh_used_before: UnixTime,
    /// Login throttle records whose last failure and block are before this.
    pub throttle_before: UnixTime,
    /// Revocation log entries before this.
    pub revocations_before: UnixTime,
    /// Unused dynamic registrations made before this.
    pub registrations_before: UnixTime,
}

/// How the janitor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JanitorPolicy {
    /// Rows per statement (per transaction).
    pub batch: u32,
    /// The refresh grace period, in seconds: how long a rotated token's response is kept.
    pub refresh_window: i64,
    /// How long revocation log entries are kept, in seconds.
    pub revocation_retention: i64,
    /// How long a dynamic registration that was never used is kept, in seconds.
    pub registration_ttl: i64,
}

impl JanitorPolicy {
    fn cutoffs(&self, now: UnixTime) -> Cutoffs {
        Cutoffs {
            now,
            refresh_used_before: now - self.refresh_window,
            throttle_before: now - crate::platform::login::THROTTLE_MEMORY,
            revocations_before: now - self.revocation_retention,
            registrations_before: now - self.registration_ttl,
        }
    }
}

/// Rows cleaned (or, in a dry run, that would be) by one run, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JanitorReport {
    /// Kept refresh responses forgotten after their grace period.
    pub refresh_responses: u64,
    pub flows: u64,
    pub codes: u64,
    /// Access and refresh tokens.
    pub tokens: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub login_sessions: u64,
    pub assertion_ids: u64,
    pub console_sessions: u64,
    pub login_throttle: u64,
    pub revocation_log: u64,
    pub unused_registrations: u64,
    pub device_codes: u64,
    pub device_challenges: u64,
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
            + self.revocation_log
            + self.unused_registrations
            + self.device_codes
            + self.device_challenges
    }

    fn add(&mut self, kind: DeadKind, n: u64) {
        let counter = match kind {
            DeadKind::RefreshResponses => &mut self.refresh_responses,
            DeadKind::Flows => &mut self.flows,
            DeadKind::Codes => &mut self.codes,
            DeadKind::AccessTokens => {
                self.tokens += n;
                &mut self.access_tokens
            }
            DeadKind::RefreshTokens => {
                self.tokens += n;
                &mut self.refresh_tokens
            }
            DeadKind::LoginSessions => &mut self.login_sessions,
            DeadKind::AssertionIds => &mut self.assertion_ids,
            DeadKind::ConsoleSessions => &mut self.console_sessions,
            DeadKind::LoginThrottle => &mut self.login_throttle,
            DeadKind::RevocationLog => &mut self.revocation_log,
            DeadKind::UnusedRegistrations => &mut self.unused_registrations,
            DeadKind::DeviceCodes => &mut self.device_codes,
            DeadKind::DeviceChallenges => &mut self.device_challenges,
        };
        *counter += n;
    }

    /// The count of one kind.
    pub fn of(&self, kind: DeadKind) -> u64 {
        match kind {
            DeadKind::RefreshResponses => self.refresh_responses,
            DeadKind::Flows => self.flows,
            DeadKind::Codes => self.codes,
            DeadKind::AccessTokens => self.access_tokens,
            DeadKind::RefreshTokens => self.refresh_tokens,
            DeadKind::LoginSessions => self.login_sessions,
            DeadKind::AssertionIds => self.assertion_ids,
            DeadKind::ConsoleSessions => self.console_sessions,
            DeadKind::LoginThrottle => self.login_throttle,
            DeadKind::RevocationLog => self.revocation_log,
            DeadKind::UnusedRegistrations => self.unused_registrations,
            DeadKind::DeviceCodes => self.device_codes,
            DeadKind::DeviceChallenges => self.device_challenges,
        }
    }
}

/// Cleans up, `batch` rows at a time, keeping revocation log entries for the default 30 days.
pub async fn run(
    deps: &Deps,
    batch: u32,
    refresh_window: i64,
) -> Result<JanitorReport, StoreError> {
    run_with(
        deps,
        &JanitorPolicy {
            batch,
            refresh_window,
            revocation_retention: crate::revocations::DEFAULT_RETENTION,
            registration_ttl: 86_400,
        },
    )
    .await
}

/// Cleans up under `policy`: each kind in batches of `policy.batch` rows, each batch its own
/// transaction, at most [`MAX_BATCHES`] batches per kind per run.
pub async fn run_with(deps: &Deps, policy: &JanitorPolicy) -> Result<JanitorReport, StoreError> {
    let cutoffs = policy.cutoffs(deps.clock.now());
    let mut report = JanitorReport::default();
    for kind in DeadKind::ALL {
        for _ in 0..MAX_BATCHES {
            let mut tx = deps.store.begin().await?;
            let n = tx
                .janitor()
                .purge_dead(kind, &cutoffs, policy.batch)
                .await?;
            tx.commit().await?;
            report.add(kind, n);
            if n < u64::from(policy.batch) {
                break;
            }
        }
    }
    Ok(report)
}

/// What [`run_with`] would delete now, by kind; deletes nothing.
pub async fn dry_run(deps: &Deps, policy: &JanitorPolicy) -> Result<JanitorReport, StoreError> {
    let cutoffs = policy.cutoffs(deps.clock.now());
    let mut report = JanitorReport::default();
    let mut tx = deps.store.read().await?;
    for kind in DeadKind::ALL {
        let n = tx.janitor().count_dead(kind, &cutoffs).await?;
        report.add(kind, n);
    }
    Ok(report)
}
