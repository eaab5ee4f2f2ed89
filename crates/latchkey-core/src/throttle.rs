//! Request rate limits: a token bucket (GCRA) per key and per kind of request, in memory, per
//! replica. Limits that must hold across replicas (login brute force) are kept in the database.
//!
//! Most limits count requests ([`Throttle::check`]). A limit on failures counts only those
//! ([`Throttle::count_failure`]) and, once a key is over it, refuses the key before the work a
//! failure costs ([`Throttle::refused`]), the way the login's brute-force limit does.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitConfig;

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    AuthorizePerIp,
    TokenPerIp,
    TokenPerClient,
    RevokePerIp,
    RevokePerClient,
    IntrospectPerIp,
    UserinfoPerIp,
    /// Bearer tokens the self-service API refused (a failure limit).
    ApiBadTokenPerIp,
    /// Dynamic client registrations.
    RegisterPerIp,
}

const LIMITS: [Limit; 9] = [
    Limit::AuthorizePerIp,
    Limit::TokenPerIp,
    Limit::TokenPerClient,
    Limit::RevokePerIp,
    Limit::RevokePerClient,
    Limit::IntrospectPerIp,
    Limit::UserinfoPerIp,
    Limit::ApiBadTokenPerIp,
    Limit::RegisterPerIp,
];

impl Limit {
    fn per_minute(self, c: &RateLimitConfig) -> u32 {
        match self {
            Self::AuthorizePerIp => c.authorize_per_ip,
            Self::TokenPerIp => c.token_per_ip,
            Self::TokenPerClient => c.token_per_client,
            Self::RevokePerIp => c.revoke_per_ip,
            Self::RevokePerClient => c.revoke_per_client,
            Self::IntrospectPerIp => c.introspect_per_ip,
            Self::UserinfoPerIp => c.userinfo_per_ip,
            Self::ApiBadTokenPerIp => c.api_bad_token_per_ip,
            Self::RegisterPerIp => c.register_per_ip,
        }
    }
}

/// A request over its limit, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited; retry after {retry_after:?}")]
pub struct Throttled {
    pub retry_after: Duration,
}

/// The limits of one replica.
pub struct Throttle {
    limiters: Vec<(Limit, DefaultKeyedRateLimiter<String>)>,
    /// Keys over a failure limit, and when they may fail again: what [`Throttle::refused`]
    /// reads without counting.
    refused_until: Mutex<HashMap<(Limit, String), Instant>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field(
                "limits",
                &self.limiters.iter().map(|(l, _)| l).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// How often (in checks) the limiters forget keys that are back to a full bucket.
const SHRINK_EVERY: u64 = 10_000;

impl Throttle {
    /// The configured limits; none at all when rate limiting is off.
    pub fn new(config: &RateLimitConfig) -> Self {
        let limiters = if config.enabled {
            LIMITS
                .iter()
                .filter_map(|&l| {
                    NonZeroU32::new(l.per_minute(config)).map(|n| {
                        // Bursts of up to a tenth of a minute's allowance.
                        let burst =
                            NonZeroU32::new((n.get() / 10).max(1)).unwrap_or(NonZeroU32::MIN);
                        (
                            l,
                            DefaultKeyedRateLimiter::keyed(Quota::per_minute(n).allow_burst(burst)),
                        )
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            limiters,
            refused_until: Mutex::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// No limits at all.
    pub fn unlimited() -> Self {
        Self {
            limiters: Vec::new(),
            refused_until: Mutex::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Whether `limit` is enforced (rate limits on, and this one configured): when it is not,
    /// [`check`](Self::check) always passes and the caller need not work out a key.
    pub fn applies(&self, limit: Limit) -> bool {
        self.limiters.iter().any(|(l, _)| *l == limit)
    }

    /// Counts one request of `key` against `limit`.
    pub fn check(&self, limit: Limit, key: &str) -> Result<(), Throttled> {
        let Some((_, limiter)) = self.limiters.iter().find(|(l, _)| *l == limit) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SHRINK_EVERY == SHRINK_EVERY - 1 {
            for (_, l) in &self.limiters {
                l.retain_recent();
                l.shrink_to_fit();
            }
            let now = Instant::now();
            self.refused_keys().retain(|_, until| *until > now);
        }
        limiter.check_key(&bounded(key)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Throttled {
                retry_after: wait.max(Duration::from_secs(1)),
            }
        })
    }

    /// Counts one failure of `key` against the failure limit `limit`. Over the limit, the key
    /// stays [`refused`](Self::refused) until the limit would let it fail again.
    pub fn count_failure(&self, limit: Limit, key: &str) -> Result<(), Throttled> {
        let counted = self.check(limit, key);
        if let Err(t) = counted {
            self.refused_keys()
                .insert((limit, bounded(key)), Instant::now() + t.retry_after);
        }
        counted
    }

    /// Whether `key` is over the failure limit `limit` now. Counts nothing, so it comes before
    /// the work that could fail: a key that keeps failing stops costing that work.
    pub fn refused(&self, limit: Limit, key: &str) -> Result<(), Throttled> {
        if !self.applies(limit) {
            return Ok(());
        }
        let mut refused = self.refused_keys();
        let entry = (limit, bounded(key));
        let Some(&until) = refused.get(&entry) else {
            return Ok(());
        };
        let now = Instant::now();
        if until <= now {
            refused.remove(&entry);
            return Ok(());
        }
        Err(Throttled {
            retry_after: (until - now).max(Duration::from_secs(1)),
        })
    }

    fn refused_keys(&self) -> MutexGuard<'_, HashMap<(Limit, String), Instant>> {
        self.refused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A key as the limiters keep it: at most 128 characters, so that a caller cannot make them
/// hold long strings.
fn bounded(key: &str) -> String {
    if key.len() <= 128 {
        key.to_owned()
    } else {
        key.chars().take(128).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_limit_is_throttled_and_others_are_not() {
        let config = RateLimitConfig {
            token_per_client: 10,
            ..RateLimitConfig::default()
        };
        let t = Throttle::new(&config);
        // A burst of a tenth of the per-minute allowance, then throttled.
        assert!(t.check(Limit::TokenPerClient, "a").is_ok());
        let err = t
            .check(Limit::TokenPerClient, "a")
            .expect_err("over the limit");
        assert!(err.retry_after >= Duration::from_secs(1));
        assert!(
            t.check(Limit::TokenPerClient, "b").is_ok(),
            "keys are independent"
        );
        assert!(
            t.check(Limit::TokenPerIp, "a").is_ok(),
            "limits are independent"
        );
    }

    #[test]
    fn a_failure_limit_counts_failures_and_then_refuses_before_the_work() {
        let t = Throttle::new(&RateLimitConfig {
            api_bad_token_per_ip: 20, // bursts of 2
            ..RateLimitConfig::default()
        });
        let limit = Limit::ApiBadTokenPerIp;
        // Asking whether a key is refused counts nothing.
        for _ in 0..10 {
            assert!(t.refused(limit, "a").is_ok());
        }
        assert!(t.count_failure(limit, "a").is_ok());
        assert!(t.count_failure(limit, "a").is_ok());
        assert!(t.refused(limit, "a").is_ok(), "not over the limit yet");
        let over = t.count_failure(limit, "a").expect_err("over the limit");
        assert!(over.retry_after >= Duration::from_secs(1));
        let refused = t.refused(limit, "a").expect_err("refused before the work");
        assert!(refused.retry_after >= Duration::from_secs(1));
        assert!(refused.retry_after <= over.retry_after);
        assert!(t.refused(limit, "b").is_ok(), "keys are independent");
        assert!(t.count_failure(limit, "b").is_ok());
        assert!(Throttle::unlimited().refused(limit, "a").is_ok());
    }

    #[test]
    fn disabled_or_zero_means_unlimited() {
        let off = Throttle::new(&RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        });
        let zero = Throttle::new(&RateLimitConfig {
            token_per_client: 0,
            ..RateLimitConfig::default()
        });
        for _ in 0..1000 {
            assert!(off.check(Limit::TokenPerClient, "a").is_ok());
            assert!(zero.check(Limit::TokenPerClient, "a").is_ok());
        }
        assert!(!off.applies(Limit::TokenPerClient));
        assert!(!zero.applies(Limit::TokenPerClient));
        let on = Throttle::new(&RateLimitConfig::default());
        assert!(on.applies(Limit::TokenPerClient));
    }
}
