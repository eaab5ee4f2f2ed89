//! The platform's tables: accounts, users, memberships, apps, console sessions, login throttle.

use crate::sql::{Columns, Param, from_json, params, parse_enum, to_json};
use crate::tx::SqlTx;
use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::platform::model::{
    Account, AccountKind, AccountMembership, AppProfile, AppType, ConsoleSession, Member,
    Membership, Role, ThrottleRecord, User, Visibility,
};
use latchkey_core::store::{
    AccountRepository, AppRepository, ConsoleSessionRepository, LoginThrottleRepository, StoreError,
};
use latchkey_types::Scope;

macro_rules! account_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "name, ",
            $p,
            "kind, ",
            $p,
            "block_third_party_apps, ",
            $p,
            "created_at, ",
            $p,
            "updated_at"
        )
    };
}

macro_rules! user_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id AS user_id, ",
            $p,
            "email, ",
            $p,
            "name AS user_name, ",
            $p,
            "password_hash, ",
            $p,
            "status, ",
            $p,
            "is_operator, ",
            $p,
            "created_at AS user_created_at, ",
            $p,
            "updated_at AS user_updated_at"
        )
    };
}

macro_rules! app_columns {
    () => {
        "client_id, account_id, description, app_type, required_scopes, optional_scopes, visibility, \
         domain, verification_token, domain_verified_at, requested_restricted, approved_restricted, \
         promoted_at, created_at, updated_at"
    };
}

fn account_from_row(r: &dyn Columns) -> Result<Account, StoreError> {
    Ok(Account {
        id: r.text("id")?,
        name: r.text("name")?,
        kind: parse_enum("kind", &r.text("kind")?, AccountKind::parse)?,
        block_third_party_apps: r.int("block_third_party_apps")? != 0,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

fn user_from_row(r: &dyn Columns) -> Result<User, StoreError> {
    Ok(User {
        id: r.text("user_id")?,
        email: r.text("email")?,
        name: r.text("user_name")?,
        password_hash: r.opt_text("password_hash")?,
        status: r.text("status")?,
        is_operator: r.int("is_operator")? != 0,
        created_at: r.int("user_created_at")?,
        updated_at: r.int("user_updated_at")?,
    })
}

fn role(r: &dyn Columns) -> Result<Role, StoreError> {
    parse_enum("role", &r.text("role")?, Role::parse)
}

fn scope_column(r: &dyn Columns, column: &str) -> Result<Scope, StoreError> {
    Scope::parse(&r.text(column)?).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn app_from_row(r: &dyn Columns) -> Result<AppProfile, StoreError> {
    Ok(AppProfile {
        client_id: r.text("client_id")?,
        account_id: r.text("account_id")?,
        description: r.text("description")?,
        app_type: parse_enum("app_type", &r.text("app_type")?, AppType::parse)?,
        required_scopes: scope_column(r, "required_scopes")?,
        optional_scopes: scope_column(r, "optional_scopes")?,
        visibility: parse_enum("visibility", &r.text("visibility")?, Visibility::parse)?,
        domain: r.opt_text("domain")?,
        verification_token: r.opt_text("verification_token")?,
        domain_verified_at: r.opt_int("domain_verified_at")?,
        requested_restricted: from_json("requested_restricted", &r.text("requested_restricted")?)?,
        approved_restricted: from_json("approved_restricted", &r.text("approved_restricted")?)?,
        promoted_at: r.opt_int("promoted_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

fn membership_from_row(r: &dyn Columns) -> Result<AccountMembership, StoreError> {
    Ok(AccountMembership {
        account: account_from_row(r)?,
        role: role(r)?,
    })
}

fn member_from_row(r: &dyn Columns) -> Result<Member, StoreError> {
    Ok(Member {
        user: user_from_row(r)?,
        role: role(r)?,
    })
}

fn console_session_from_row(r: &dyn Columns) -> Result<ConsoleSession, StoreError> {
    Ok(ConsoleSession {
        id: r.text("id")?,
        cookie_hash: r.text("cookie_hash")?,
        user_id: r.text("user_id")?,
        authenticated_at: r.int("authenticated_at")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
    })
}

fn throttle_from_row(r: &dyn Columns) -> Result<ThrottleRecord, StoreError> {
    Ok(ThrottleRecord {
        key: r.text("throttle_key")?,
        failures: r.int("failures")?,
        last_failure_at: r.int("last_failure_at")?,
        blocked_until: r.int("blocked_until")?,
    })
}

fn count_from_row(r: &dyn Columns) -> Result<i64, StoreError> {
    r.int("n")
}

fn failures_from_row(r: &dyn Columns) -> Result<i64, StoreError> {
    r.int("failures")
}

fn trusted_name_from_row(r: &dyn Columns) -> Result<(String, String), StoreError> {
    Ok((r.text("name")?, r.text("standing")?))
}

#[async_trait]
impl AccountRepository for SqlTx<'_> {
    async fn insert_account(&mut self, a: &Account) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO accounts (",
                account_columns!(""),
                ") VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            params![
                &a.id,
                &a.name,
                a.kind.as_str(),
                a.block_third_party_apps,
                a.created_at,
                a.updated_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn account(&mut self, id: &str) -> Result<Option<Account>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                account_columns!(""),
                " FROM accounts WHERE id = $1"
            ),
            params![id],
            account_from_row,
        )
        .await
    }

    async fn list_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                account_columns!(""),
                " FROM accounts ORDER BY name, id"
            ),
            params![],
            account_from_row,
        )
        .await
    }

    async fn set_block_third_party_apps(
        &mut self,
        id: &str,
        block: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE accounts SET block_third_party_apps = $2, updated_at = $3 WHERE id = $1",
                params![id, block, now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn insert_user(&mut self, u: &User) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO users (id, email, name, password_hash, status, is_operator, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params![
                &u.id,
                &u.email,
                &u.name,
                u.password_hash.as_deref(),
                &u.status,
                u.is_operator,
                u.created_at,
                u.updated_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn user(&mut self, id: &str) -> Result<Option<User>, StoreError> {
        self.optional(
            concat!("SELECT ", user_columns!(""), " FROM users WHERE id = $1"),
            params![id],
            user_from_row,
        )
        .await
    }

    async fn user_by_email(&mut self, email: &str) -> Result<Option<User>, StoreError> {
        self.optional(
            concat!("SELECT ", user_columns!(""), " FROM users WHERE email = $1"),
            params![email],
            user_from_row,
        )
        .await
    }

    async fn upsert_membership(&mut self, m: &Membership) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, user_id) DO UPDATE SET role = excluded.role",
            params![&m.account_id, &m.user_id, m.role.as_str(), m.created_at],
        )
        .await?;
        Ok(())
    }

    async fn memberships_of(
        &mut self,
        user_id: &str,
    ) -> Result<Vec<AccountMembership>, StoreError> {
        self.all(
            concat!(
                "SELECT m.role, ",
                account_columns!("a."),
                " FROM memberships m JOIN accounts a ON a.id = m.account_id \
                 WHERE m.user_id = $1 ORDER BY a.name, a.id"
            ),
            params![user_id],
            membership_from_row,
        )
        .await
    }

    async fn members(&mut self, account_id: &str) -> Result<Vec<Member>, StoreError> {
        self.all(
            concat!(
                "SELECT m.role, ",
                user_columns!("u."),
                " FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.account_id = $1 ORDER BY u.email"
            ),
            params![account_id],
            member_from_row,
        )
        .await
    }
}

/// An app's columns, in the order of `app_columns!()`.
fn app_params(a: &AppProfile) -> Vec<Param<'_>> {
    params![
        &a.client_id,
        &a.account_id,
        &a.description,
        a.app_type.as_str(),
        a.required_scopes.to_string(),
        a.optional_scopes.to_string(),
        a.visibility.as_str(),
        a.domain.as_deref(),
        a.verification_token.as_deref(),
        a.domain_verified_at,
        to_json(&a.requested_restricted),
        to_json(&a.approved_restricted),
        a.promoted_at,
        a.created_at,
        a.updated_at,
    ]
}

#[async_trait]
impl AppRepository for SqlTx<'_> {
    async fn insert(&mut self, a: &AppProfile) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO apps (",
                app_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            app_params(a),
        )
        .await?;
        Ok(())
    }

    async fn get(&mut self, client_id: &str) -> Result<Option<AppProfile>, StoreError> {
        self.optional(
            concat!("SELECT ", app_columns!(), " FROM apps WHERE client_id = $1"),
            params![client_id],
            app_from_row,
        )
        .await
    }

    async fn update(&mut self, a: &AppProfile) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE apps SET account_id = $2, description = $3, app_type = $4, required_scopes = $5, \
                 optional_scopes = $6, visibility = $7, domain = $8, verification_token = $9, \
                 domain_verified_at = $10, requested_restricted = $11, approved_restricted = $12, \
                 promoted_at = $13, created_at = $14, updated_at = $15 WHERE client_id = $1",
                app_params(a),
            )
            .await?;
        Ok(done == 1)
    }

    async fn list_for_account(&mut self, account_id: &str) -> Result<Vec<AppProfile>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                app_columns!(),
                " FROM apps WHERE account_id = $1 ORDER BY created_at, client_id"
            ),
            params![account_id],
            app_from_row,
        )
        .await
    }

    async fn list_all(&mut self, limit: u32) -> Result<Vec<AppProfile>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                app_columns!(),
                " FROM apps ORDER BY created_at DESC, client_id LIMIT $1"
            ),
            params![limit],
            app_from_row,
        )
        .await
    }

    async fn trusted_names(
        &mut self,
        except: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.all(
            "SELECT c.client_name AS name, CAST(CASE WHEN a.domain_verified_at IS NOT NULL THEN 'verified' \
             WHEN a.visibility = 'public' THEN 'public' ELSE 'first-party' END AS TEXT) AS standing \
             FROM apps a JOIN clients c ON c.id = a.client_id \
             JOIN accounts ac ON ac.id = a.account_id \
             WHERE a.client_id <> $1 AND (a.domain_verified_at IS NOT NULL \
             OR a.visibility = 'public' OR ac.kind = 'platform')",
            params![except.unwrap_or_default()],
            trusted_name_from_row,
        )
        .await
    }

    async fn user_count(&mut self, client_id: &str) -> Result<i64, StoreError> {
        Ok(self
            .optional(
                "SELECT COUNT(DISTINCT subject) AS n FROM grants WHERE client_id = $1 AND revoked_at IS NULL",
                params![client_id],
                count_from_row,
            )
            .await?
            .unwrap_or(0))
    }
}

#[async_trait]
impl ConsoleSessionRepository for SqlTx<'_> {
    async fn insert(&mut self, s: &ConsoleSession) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO console_sessions (id, cookie_hash, user_id, authenticated_at, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            params![
                &s.id,
                &s.cookie_hash,
                &s.user_id,
                s.authenticated_at,
                s.created_at,
                s.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn by_cookie(
        &mut self,
        cookie_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        self.optional(
            "SELECT id, cookie_hash, user_id, authenticated_at, created_at, expires_at \
             FROM console_sessions WHERE cookie_hash = $1 AND expires_at > $2",
            params![cookie_hash, now],
            console_session_from_row,
        )
        .await
    }

    async fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .execute("DELETE FROM console_sessions WHERE id = $1", params![id])
            .await?;
        Ok(done == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_kind(
            latchkey_core::janitor::DeadKind::ConsoleSessions,
            now,
            limit,
        )
        .await
    }
}

#[async_trait]
impl LoginThrottleRepository for SqlTx<'_> {
    async fn get(&mut self, key: &str) -> Result<Option<ThrottleRecord>, StoreError> {
        self.optional(
            "SELECT throttle_key, failures, last_failure_at, blocked_until FROM login_throttle \
             WHERE throttle_key = $1",
            params![key],
            throttle_from_row,
        )
        .await
    }

    async fn record_failure(&mut self, key: &str, now: UnixTime) -> Result<i64, StoreError> {
        self.optional(
            "INSERT INTO login_throttle (throttle_key, failures, last_failure_at, blocked_until) \
             VALUES ($1, 1, $2, 0) ON CONFLICT (throttle_key) DO UPDATE SET \
             failures = login_throttle.failures + 1, last_failure_at = excluded.last_failure_at \
             RETURNING failures",
            params![key, now],
            failures_from_row,
        )
        .await?
        .ok_or_else(|| StoreError::Database("the throttle upsert returned no row".into()))
    }

    async fn forgive(&mut self, key: &str) -> Result<i64, StoreError> {
        Ok(self
            .optional(
                "UPDATE login_throttle SET failures = failures - 1 \
                 WHERE throttle_key = $1 AND failures > 0 RETURNING failures",
                params![key],
                failures_from_row,
            )
            .await?
            .unwrap_or(0))
    }

    async fn block(&mut self, key: &str, until: UnixTime) -> Result<(), StoreError> {
        self.execute(
            "UPDATE login_throttle SET blocked_until = $2 WHERE throttle_key = $1",
            params![key, until],
        )
        .await?;
        Ok(())
    }

    async fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM login_throttle WHERE throttle_key = $1",
            params![key],
        )
        .await?;
        Ok(())
    }

    async fn purge(&mut self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM login_throttle WHERE throttle_key IN \
             (SELECT throttle_key FROM login_throttle WHERE last_failure_at < $1 AND blocked_until < $1 LIMIT $2)",
            params![before, limit],
        )
        .await
    }
}
