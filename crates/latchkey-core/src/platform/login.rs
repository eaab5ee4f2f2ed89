//! The built-in login: email and password with a brute-force backoff kept in the database (so
//! it holds across replicas), the sessions of the platform's pages, and the login side of the
//! engine's challenge protocol.

use std::net::IpAddr;

use latchkey_types::flow::{AcceptLogin, LoginRequest};
use latchkey_types::routes::public;

use super::catalog::APPS_WRITE;
use super::model::{ConsoleSession, ThrottleRecord, User};
use super::password::{MAX_PASSWORD_LEN, dummy_hash, run_blocking, verify_password};
use super::{Platform, PlatformError, Principal};
use crate::clock::UnixTime;
use crate::crypto::lookup_hash;
use crate::entropy::EntropyExt as _;
use crate::secret::SecretString;

/// Failures under one user before the backoff starts.
pub const USER_FREE_FAILURES: i64 = 5;
/// Failures from one address before the backoff starts (many users may share an address).
pub const IP_FREE_FAILURES: i64 = 20;
/// The first wait, doubled with each further failure, up to [`MAX_BLOCK`].
const FIRST_BLOCK: i64 = 30;
const MAX_BLOCK: i64 = 15 * 60;
/// Failures older than this are forgotten by the janitor.
pub const THROTTLE_MEMORY: i64 = 24 * 3600;

/// How long to refuse after `failures` failures, `free` of which are free.
fn block_for(failures: i64, free: i64) -> i64 {
    if failures < free {
        return 0;
    }
    let doublings = u32::try_from((failures - free).min(10)).unwrap_or(10);
    (FIRST_BLOCK << doublings).min(MAX_BLOCK)
}

/// A counter of failed logins: its key in `login_throttle` and the failures it allows before
/// the backoff starts.
struct Counter {
    key: String,
    free: i64,
}

/// The counters a login attempt counts under: the user's (by a hash of the email), then the
/// address's. Always in this order, so that concurrent attempts lock them in the same order.
fn counters(email: &str, ip: Option<IpAddr>) -> Vec<Counter> {
    std::iter::once(Counter {
        key: format!("user:{}", lookup_hash(email)),
        free: USER_FREE_FAILURES,
    })
    .chain(ip.map(|ip| Counter {
        key: format!("ip:{ip}"),
        free: IP_FREE_FAILURES,
    }))
    .collect()
}

/// Refuses while `record` is blocked at `now`.
fn check_block(record: Option<&ThrottleRecord>, now: UnixTime) -> Result<(), PlatformError> {
    match record {
        Some(t) if t.blocked_until > now => Err(PlatformError::Throttled {
            retry_after: t.blocked_until - now,
        }),
        _ => Ok(()),
    }
}

/// A session cookie to set: its value, and `Some(max_age)` for a persistent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    pub value: SecretString,
    pub max_age: Option<i64>,
}

/// What the login page shows for a challenge.
#[derive(Debug)]
pub enum LoginStart {
    /// The user is remembered: no form, go on (and a console session for them).
    Skip {
        redirect_to: String,
        cookie: Option<SessionCookie>,
    },
    /// Ask for the email and password.
    Form { request: Box<LoginRequest> },
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    pub user: User,
    pub redirect_to: String,
    pub cookie: SessionCookie,
}

impl Platform {
    /// Checks an email and password. Unknown users and wrong passwords take the same time and get
    /// the same answer; repeated failures per user and per address are refused for a while.
    ///
    /// The attempt is counted as a failure before the password is checked (see
    /// [`Self::count_attempt`]), so concurrent attempts cannot check more passwords than the
    /// backoff allows; a right password then clears the counters.
    pub async fn authenticate(
        &self,
        email: &str,
        password: SecretString,
        ip: Option<IpAddr>,
    ) -> Result<User, PlatformError> {
        let email = email.trim().to_lowercase();
        let now = self.deps.clock.now();
        let counters = counters(&email, ip);
        {
            // While backed off, refuse with a read alone: a flood of attempts writes nothing.
            let mut r = self.deps.store.read().await?;
            for c in &counters {
                check_block(r.login_throttle().get(&c.key).await?.as_ref(), now)?;
            }
        }
        self.count_attempt(&counters, now).await?;
        let user = if email.len() > 254 {
            None
        } else {
            self.deps
                .store
                .read()
                .await?
                .accounts()
                .user_by_email(&email)
                .await?
        };
        let usable = user
            .as_ref()
            .filter(|u| u.is_active())
            .and_then(|u| u.password_hash.clone());
        let hash = usable.clone().unwrap_or_else(|| dummy_hash().to_owned());
        let too_long = password.expose().len() > MAX_PASSWORD_LEN;
        let ok = run_blocking(self.blocking.as_ref(), move || {
            !too_long && verify_password(&password, &hash)
        })
        .await
        .unwrap_or(false);
        if ok && usable.is_some() {
            // The user's failures are forgotten; the address gets back only the attempt just
            // counted, so a valid login of one's own cannot reset an address that guesses at
            // other users' passwords.
            let mut tx = self.deps.store.begin().await?;
            let (first, others) = counters
                .split_first()
                .map_or((None, &[][..]), |(f, o)| (Some(f), o));
            if let Some(user_counter) = first {
                tx.login_throttle().clear(&user_counter.key).await?;
            }
            for c in others {
                let failures = tx.login_throttle().forgive(&c.key).await?;
                if block_for(failures, c.free) == 0 {
                    tx.login_throttle().block(&c.key, 0).await?;
                }
            }
            tx.commit().await?;
            return user.ok_or(PlatformError::BadCredentials);
        }
        tracing::info!("login failed");
        Err(PlatformError::BadCredentials)
    }

    /// Counts an attempt as a failure under every counter, and starts the backoff that failure
    /// earns, before its password is checked. `record_failure` is one statement that holds the
    /// counter's row (PostgreSQL) or the write lock (SQLite) until the commit, so each attempt
    /// sees the count and the block of every attempt before it: of concurrent attempts, only as
    /// many as the backoff allows get through. One that finds a block is refused and, as the
    /// transaction is not committed, not counted.
    async fn count_attempt(
        &self,
        counters: &[Counter],
        now: UnixTime,
    ) -> Result<(), PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        for c in counters {
            let failures = tx.login_throttle().record_failure(&c.key, now).await?;
            check_block(tx.login_throttle().get(&c.key).await?.as_ref(), now)?;
            let wait = block_for(failures, c.free);
            if wait > 0 {
                tx.login_throttle().block(&c.key, now + wait).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Opens a console session; `remember` makes its cookie outlive the browser.
    pub async fn start_session(
        &self,
        user_id: &str,
        remember: bool,
    ) -> Result<SessionCookie, PlatformError> {
        let now = self.deps.clock.now();
        let ttl = if remember {
            self.settings.remembered_session_ttl
        } else {
            self.settings.console_session_ttl
        };
        let value = self.deps.entropy.token();
        let session = ConsoleSession {
            id: self.deps.entropy.uuid().to_string(),
            cookie_hash: lookup_hash(&value),
            user_id: user_id.to_owned(),
            authenticated_at: now,
            created_at: now,
            expires_at: now + ttl,
        };
        let mut tx = self.deps.store.begin().await?;
        tx.console_sessions().insert(&session).await?;
        tx.commit().await?;
        Ok(SessionCookie {
            value: SecretString::new(value),
            max_age: remember.then_some(ttl),
        })
    }

    /// The session a cookie names, and its user's principal; `None` when it is not valid.
    pub async fn session(
        &self,
        cookie: &str,
    ) -> Result<Option<(ConsoleSession, Principal)>, PlatformError> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Ok(None);
        }
        let mut r = self.deps.store.read().await?;
        let Some(session) = r
            .console_sessions()
            .by_cookie(&lookup_hash(cookie), self.deps.clock.now())
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = r.accounts().user(&session.user_id).await? else {
            return Ok(None);
        };
        if !user.is_active() {
            return Ok(None);
        }
        let memberships = r.accounts().memberships_of(&user.id).await?;
        Ok(Some((
            session,
            Principal {
                user,
                memberships,
                token_accounts: None,
            },
        )))
    }

    /// Logs out: ends the console session and the user's login sessions of the engine (with
    /// back-channel logouts), so the next authorization asks for the password again.
    pub async fn logout(&self, session: &ConsoleSession) -> Result<(), PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        tx.console_sessions().delete(&session.id).await?;
        tx.commit().await?;
        // The engine's logout: the apps of those logins get their back-channel logouts.
        self.engine
            .end_login_sessions(
                crate::store::SessionSelector::Subject(session.user_id.clone()),
                crate::revocations::RevocationKind::Logout,
            )
            .await?;
        Ok(())
    }

    /// Ends one console session (the platform's pages) and nothing else: the built-in logout
    /// provider's part of a logout, whose engine session ends through the logout challenge.
    pub async fn end_console_session(&self, session: &ConsoleSession) -> Result<(), PlatformError> {
        let mut tx = self.deps.store.begin().await?;
        tx.console_sessions().delete(&session.id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The principal of an access token carrying `apps.write`, checked by the engine's own
    /// introspection (suspended apps, revoked grants and expired tokens are refused).
    pub async fn token_principal(&self, token: &str) -> Result<Principal, PlatformError> {
        let i = self.engine.introspect(token, None).await?;
        if !i.active || i.token_use.as_deref() != Some("access_token") {
            return Err(PlatformError::Unauthenticated);
        }
        // A token issued for other resources is not for this API (RFC 8707); one issued for
        // no resource in particular is.
        let api = crate::oauth::resources::api_resource(&self.engine.settings().issuer);
        if let Some(aud) = i.aud.as_ref().filter(|a| !a.is_empty())
            && !aud.contains(&api)
        {
            return Err(PlatformError::Unauthenticated);
        }
        if !i
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .any(|s| s == APPS_WRITE)
        {
            return Err(PlatformError::InsufficientScope { scope: APPS_WRITE });
        }
        let subject = i.sub.ok_or(PlatformError::Unauthenticated)?;
        let accounts: Vec<String> = i
            .ext
            .as_ref()
            .and_then(|e| e.get("accounts"))
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default();
        let mut r = self.deps.store.read().await?;
        let user = r
            .accounts()
            .user(&subject)
            .await?
            .filter(User::is_active)
            .ok_or(PlatformError::Unauthenticated)?;
        let memberships = r.accounts().memberships_of(&user.id).await?;
        Ok(Principal {
            user,
            memberships,
            token_accounts: Some(accounts),
        })
    }

    /// The login page for a challenge: skip the form when the engine remembers the user.
    pub async fn login_start(&self, challenge: &str) -> Result<LoginStart, PlatformError> {
        let request = self.engine.login_request(challenge).await?;
        if !request.skip {
            return Ok(LoginStart::Form {
                request: Box::new(request),
            });
        }
        let user = self
            .deps
            .store
            .read()
            .await?
            .accounts()
            .user(&request.subject)
            .await?
            .filter(User::is_active);
        let Some(user) = user else {
            // The remembered subject is gone or disabled: ask again.
            return Ok(LoginStart::Form {
                request: Box::new(request),
            });
        };
        let redirect = self
            .engine
            .accept_login(
                challenge,
                &AcceptLogin {
                    subject: user.id.clone(),
                    remember: true,
                    ..AcceptLogin::default()
                },
            )
            .await?;
        let cookie = self.start_session(&user.id, false).await?;
        Ok(LoginStart::Skip {
            redirect_to: redirect.redirect_to,
            cookie: Some(cookie),
        })
    }

    /// Checks the password, opens a console session, and — with a challenge — accepts the login
    /// through the engine.
    pub async fn login(
        &self,
        challenge: Option<&str>,
        email: &str,
        password: SecretString,
        remember: bool,
        ip: Option<IpAddr>,
    ) -> Result<LoggedIn, PlatformError> {
        if let Some(c) = challenge {
            // Fail on a dead challenge before counting a password attempt against it.
            self.engine.login_request(c).await?;
        }
        let user = self.authenticate(email, password, ip).await?;
        let redirect_to = match challenge {
            Some(c) => {
                self.engine
                    .accept_login(
                        c,
                        &AcceptLogin {
                            subject: user.id.clone(),
                            remember,
                            amr: Some(vec!["pwd".into()]),
                            ..AcceptLogin::default()
                        },
                    )
                    .await?
                    .redirect_to
            }
            None => public::UI_APPS.to_owned(),
        };
        let cookie = self.start_session(&user.id, remember).await?;
        Ok(LoggedIn {
            user,
            redirect_to,
            cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_session_cookie_or_password_hash() {
        let logged_in = LoggedIn {
            user: User {
                id: "u1".into(),
                email: "alice@acme.test".into(),
                name: "Alice".into(),
                password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$hash-secret".into()),
                status: "active".into(),
                is_operator: false,
                created_at: 1,
                updated_at: 1,
            },
            redirect_to: "/ui/apps".into(),
            cookie: SessionCookie {
                value: SecretString::new("console-cookie-secret"),
                max_age: None,
            },
        };
        let shown = format!("{logged_in:?}");
        assert!(!shown.contains("hash-secret"), "{shown}");
        assert!(!shown.contains("console-cookie-secret"), "{shown}");
        assert!(shown.contains("alice@acme.test"), "{shown}");
    }

    #[test]
    fn backoff_starts_after_the_free_failures_and_is_capped() {
        assert_eq!(block_for(4, 5), 0);
        assert_eq!(block_for(5, 5), 30);
        assert_eq!(block_for(6, 5), 60);
        assert_eq!(block_for(100, 5), MAX_BLOCK);
    }
}
