//! The platform's tables: accounts, users, memberships, apps, console sessions, login throttle.

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
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{from_json, map_err, parse_enum, to_json};
use crate::tx::SqlTx;

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

fn account_from_row(r: &AnyRow) -> Result<Account, StoreError> {
    let kind: String = r.try_get("kind").map_err(map_err)?;
    Ok(Account {
        id: r.try_get("id").map_err(map_err)?,
        name: r.try_get("name").map_err(map_err)?,
        kind: parse_enum("kind", &kind, AccountKind::parse)?,
        block_third_party_apps: r
            .try_get::<i64, _>("block_third_party_apps")
            .map_err(map_err)?
            != 0,
        created_at: r.try_get("created_at").map_err(map_err)?,
        updated_at: r.try_get("updated_at").map_err(map_err)?,
    })
}

fn user_from_row(r: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get("user_id").map_err(map_err)?,
        email: r.try_get("email").map_err(map_err)?,
        name: r.try_get("user_name").map_err(map_err)?,
        password_hash: r.try_get("password_hash").map_err(map_err)?,
        status: r.try_get("status").map_err(map_err)?,
        is_operator: r.try_get::<i64, _>("is_operator").map_err(map_err)? != 0,
        created_at: r.try_get("user_created_at").map_err(map_err)?,
        updated_at: r.try_get("user_updated_at").map_err(map_err)?,
    })
}

fn role(r: &AnyRow) -> Result<Role, StoreError> {
    let role: String = r.try_get("role").map_err(map_err)?;
    parse_enum("role", &role, Role::parse)
}

fn scope_column(r: &AnyRow, column: &str) -> Result<Scope, StoreError> {
    let s: String = r.try_get(column).map_err(map_err)?;
    Scope::parse(&s).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn app_from_row(r: &AnyRow) -> Result<AppProfile, StoreError> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(map_err);
    Ok(AppProfile {
        client_id: s("client_id")?,
        account_id: s("account_id")?,
        description: s("description")?,
        app_type: parse_enum("app_type", &s("app_type")?, AppType::parse)?,
        required_scopes: scope_column(r, "required_scopes")?,
        optional_scopes: scope_column(r, "optional_scopes")?,
        visibility: parse_enum("visibility", &s("visibility")?, Visibility::parse)?,
        domain: r.try_get("domain").map_err(map_err)?,
        verification_token: r.try_get("verification_token").map_err(map_err)?,
        domain_verified_at: r.try_get("domain_verified_at").map_err(map_err)?,
        requested_restricted: from_json("requested_restricted", &s("requested_restricted")?)?,
        approved_restricted: from_json("approved_restricted", &s("approved_restricted")?)?,
        promoted_at: r.try_get("promoted_at").map_err(map_err)?,
        created_at: r.try_get("created_at").map_err(map_err)?,
        updated_at: r.try_get("updated_at").map_err(map_err)?,
    })
}

#[async_trait]
impl AccountRepository for SqlTx {
    async fn insert_account(&mut self, a: &Account) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO accounts (",
            account_columns!(""),
            ") VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(a.id.as_str())
        .bind(a.name.as_str())
        .bind(a.kind.as_str())
        .bind(i64::from(a.block_third_party_apps))
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn account(&mut self, id: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(""),
            " FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn list_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            account_columns!(""),
            " FROM accounts ORDER BY name, id"
        ))
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter().map(account_from_row).collect()
    }

    async fn set_block_third_party_apps(
        &mut self,
        id: &str,
        block: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET block_third_party_apps = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(block))
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_user(&mut self, u: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, status, is_operator, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(u.id.as_str())
        .bind(u.email.as_str())
        .bind(u.name.as_str())
        .bind(u.password_hash.as_deref())
        .bind(u.status.as_str())
        .bind(i64::from(u.is_operator))
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn user(&mut self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(""),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_email(&mut self, email: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(""),
            " FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn upsert_membership(&mut self, m: &Membership) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(m.account_id.as_str())
        .bind(m.user_id.as_str())
        .bind(m.role.as_str())
        .bind(m.created_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn memberships_of(
        &mut self,
        user_id: &str,
    ) -> Result<Vec<AccountMembership>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT m.role, ",
            account_columns!("a."),
            " FROM memberships m JOIN accounts a ON a.id = m.account_id \
             WHERE m.user_id = $1 ORDER BY a.name, a.id"
        ))
        .bind(user_id)
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(AccountMembership {
                    account: account_from_row(r)?,
                    role: role(r)?,
                })
            })
            .collect()
    }

    async fn members(&mut self, account_id: &str) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT m.role, ",
            user_columns!("u."),
            " FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.account_id = $1 ORDER BY u.email"
        ))
        .bind(account_id)
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    user: user_from_row(r)?,
                    role: role(r)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl AppRepository for SqlTx {
    async fn insert(&mut self, a: &AppProfile) -> Result<(), StoreError> {
        let q = sqlx::query(concat!(
            "INSERT INTO apps (",
            app_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ));
        bind_app(q, a).execute(self.conn()).await.map_err(map_err)?;
        Ok(())
    }

    async fn get(&mut self, client_id: &str) -> Result<Option<AppProfile>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            app_columns!(),
            " FROM apps WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(app_from_row).transpose()
    }

    async fn update(&mut self, a: &AppProfile) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE apps SET account_id = $2, description = $3, app_type = $4, required_scopes = $5, \
             optional_scopes = $6, visibility = $7, domain = $8, verification_token = $9, \
             domain_verified_at = $10, requested_restricted = $11, approved_restricted = $12, \
             promoted_at = $13, created_at = $14, updated_at = $15 WHERE client_id = $1",
        );
        let done = bind_app(q, a).execute(self.conn()).await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_for_account(&mut self, account_id: &str) -> Result<Vec<AppProfile>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            app_columns!(),
            " FROM apps WHERE account_id = $1 ORDER BY created_at, client_id"
        ))
        .bind(account_id)
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter().map(app_from_row).collect()
    }

    async fn list_all(&mut self, limit: u32) -> Result<Vec<AppProfile>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            app_columns!(),
            " FROM apps ORDER BY created_at DESC, client_id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter().map(app_from_row).collect()
    }

    async fn trusted_names(
        &mut self,
        except: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.client_name AS name, CAST(CASE WHEN a.domain_verified_at IS NOT NULL THEN 'verified' \
             WHEN a.visibility = 'public' THEN 'public' ELSE 'first-party' END AS TEXT) AS standing \
             FROM apps a JOIN clients c ON c.id = a.client_id \
             JOIN accounts ac ON ac.id = a.account_id \
             WHERE a.client_id <> $1 AND (a.domain_verified_at IS NOT NULL \
             OR a.visibility = 'public' OR ac.kind = 'platform')",
        )
        .bind(except.unwrap_or_default())
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("standing")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn user_count(&mut self, client_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT subject) AS n FROM grants WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .fetch_one(self.conn())
        .await
        .map_err(map_err)?;
        row.try_get("n").map_err(map_err)
    }
}

/// Binds every column of `app_columns!()` in order.
fn bind_app<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    a: &'q AppProfile,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(a.client_id.as_str())
        .bind(a.account_id.as_str())
        .bind(a.description.as_str())
        .bind(a.app_type.as_str())
        .bind(a.required_scopes.to_string())
        .bind(a.optional_scopes.to_string())
        .bind(a.visibility.as_str())
        .bind(a.domain.as_deref())
        .bind(a.verification_token.as_deref())
        .bind(a.domain_verified_at)
        .bind(to_json(&a.requested_restricted))
        .bind(to_json(&a.approved_restricted))
        .bind(a.promoted_at)
        .bind(a.created_at)
        .bind(a.updated_at)
}

#[async_trait]
impl ConsoleSessionRepository for SqlTx {
    async fn insert(&mut self, s: &ConsoleSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id, cookie_hash, user_id, authenticated_at, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.id.as_str())
        .bind(s.cookie_hash.as_str())
        .bind(s.user_id.as_str())
        .bind(s.authenticated_at)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn by_cookie(
        &mut self,
        cookie_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT id, cookie_hash, user_id, authenticated_at, created_at, expires_at \
             FROM console_sessions WHERE cookie_hash = $1 AND expires_at > $2",
        )
        .bind(cookie_hash)
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(ConsoleSession {
                id: r.try_get("id").map_err(map_err)?,
                cookie_hash: r.try_get("cookie_hash").map_err(map_err)?,
                user_id: r.try_get("user_id").map_err(map_err)?,
                authenticated_at: r.try_get("authenticated_at").map_err(map_err)?,
                created_at: r.try_get("created_at").map_err(map_err)?,
                expires_at: r.try_get("expires_at").map_err(map_err)?,
            })
        })
        .transpose()
    }

    async fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_rows("console_sessions", "id", now, limit)
            .await
    }
}

#[async_trait]
impl LoginThrottleRepository for SqlTx {
    async fn get(&mut self, key: &str) -> Result<Option<ThrottleRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT throttle_key, failures, last_failure_at, blocked_until FROM login_throttle \
             WHERE throttle_key = $1",
        )
        .bind(key)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(ThrottleRecord {
                key: r.try_get("throttle_key").map_err(map_err)?,
                failures: r.try_get("failures").map_err(map_err)?,
                last_failure_at: r.try_get("last_failure_at").map_err(map_err)?,
                blocked_until: r.try_get("blocked_until").map_err(map_err)?,
            })
        })
        .transpose()
    }

    async fn record_failure(&mut self, key: &str, now: UnixTime) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO login_throttle (throttle_key, failures, last_failure_at, blocked_until) \
             VALUES ($1, 1, $2, 0) ON CONFLICT (throttle_key) DO UPDATE SET \
             failures = login_throttle.failures + 1, last_failure_at = excluded.last_failure_at \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(map_err)?;
        row.try_get("failures").map_err(map_err)
    }

    async fn block(&mut self, key: &str, until: UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE login_throttle SET blocked_until = $2 WHERE throttle_key = $1")
            .bind(key)
            .bind(until)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
            .bind(key)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn purge(&mut self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM login_throttle WHERE throttle_key IN \
             (SELECT throttle_key FROM login_throttle WHERE last_failure_at < $1 AND blocked_until < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
