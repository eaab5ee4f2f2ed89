//! Authorization codes, access tokens and refresh tokens.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::records::{
    AccessTokenRecord, AuthorizationCode, RefreshTokenRecord, TokenLookup,
};
use latchkey_core::store::{CodeRepository, StoreError, TokenRepository};
use latchkey_types::Scope;

use crate::sql::{Columns, Param, from_json, params, to_json};
use crate::tx::SqlTx;

fn scope(r: &dyn Columns) -> Result<Scope, StoreError> {
    Scope::parse(&r.text("scope")?).map_err(|e| StoreError::Corrupt(format!("scope: {e}")))
}

fn code_from_row(r: &dyn Columns) -> Result<AuthorizationCode, StoreError> {
    Ok(AuthorizationCode {
        code_hash: TokenHash(r.text("code_hash")?),
        client_id: r.text("client_id")?,
        grant_id: r.text("grant_id")?,
        family_id: r.text("family_id")?,
        data: from_json("data", &r.text("data")?)?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        consumed_at: r.opt_int("consumed_at")?,
    })
}

#[async_trait]
impl CodeRepository for SqlTx<'_> {
    async fn insert(&mut self, c: &AuthorizationCode) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO authorization_codes (code_hash, client_id, grant_id, family_id, data, \
             created_at, expires_at, consumed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params![
                c.code_hash.as_str(),
                &c.client_id,
                &c.grant_id,
                &c.family_id,
                to_json(&c.data),
                c.created_at,
                c.expires_at,
                c.consumed_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn get(&mut self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
        self.optional(
            "SELECT code_hash, client_id, grant_id, family_id, data, created_at, expires_at, \
             consumed_at FROM authorization_codes WHERE code_hash = $1",
            params![hash.as_str()],
            code_from_row,
        )
        .await
    }

    async fn consume(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE authorization_codes SET consumed_at = $2 \
                 WHERE code_hash = $1 AND consumed_at IS NULL",
                params![hash.as_str(), now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_kind(latchkey_core::janitor::DeadKind::Codes, now, limit)
            .await
    }
}

macro_rules! token_columns {
    () => {
        "a.token_hash, a.client_id, a.grant_id, a.family_id, a.subject, a.scope, a.audience, a.data, \
         a.issued_at, a.expires_at, a.revoked_at"
    };
}

/// `SELECT` a token of `$table` (with `$more` columns) by its hash, with the state of its client
/// and grant, read in the same statement.
macro_rules! by_hash {
    ($table:literal, $more:literal) => {
        concat!(
            "SELECT ",
            token_columns!(),
            $more,
            ", c.status AS client_status, g.revoked_at AS grant_revoked_at FROM ",
            $table,
            " a JOIN clients c ON c.id = a.client_id \
             LEFT JOIN grants g ON g.id = a.grant_id WHERE a.token_hash = $1"
        )
    };
}

fn lookup<T>(r: &dyn Columns, token: T) -> Result<TokenLookup<T>, StoreError> {
    Ok(TokenLookup {
        token,
        client_active: r.text("client_status")? == "active",
        grant_revoked: r.opt_int("grant_revoked_at")?.is_some(),
    })
}

fn access_from_row(r: &dyn Columns) -> Result<AccessTokenRecord, StoreError> {
    Ok(AccessTokenRecord {
        token_hash: TokenHash(r.text("token_hash")?),
        client_id: r.text("client_id")?,
        grant_id: r.opt_text("grant_id")?,
        family_id: r.text("family_id")?,
        subject: r.text("subject")?,
        scope: scope(r)?,
        audience: from_json("audience", &r.text("audience")?)?,
        claims: from_json("data", &r.text("data")?)?,
        issued_at: r.int("issued_at")?,
        expires_at: r.int("expires_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

fn refresh_from_row(r: &dyn Columns) -> Result<RefreshTokenRecord, StoreError> {
    let a = access_from_row(r)?;
    Ok(RefreshTokenRecord {
        token_hash: a.token_hash,
        client_id: a.client_id,
        grant_id: a.grant_id,
        family_id: a.family_id,
        subject: a.subject,
        scope: a.scope,
        audience: a.audience,
        claims: a.claims,
        issued_at: a.issued_at,
        expires_at: a.expires_at,
        used_at: r.opt_int("used_at")?,
        reuse_count: r.int("reuse_count")?,
        successor: r.opt_text("successor")?,
        revoked_at: a.revoked_at,
    })
}

fn access_lookup(r: &dyn Columns) -> Result<TokenLookup<AccessTokenRecord>, StoreError> {
    lookup(r, access_from_row(r)?)
}

fn refresh_lookup(r: &dyn Columns) -> Result<TokenLookup<RefreshTokenRecord>, StoreError> {
    lookup(r, refresh_from_row(r)?)
}

/// The columns access and refresh tokens share, then `$rest`, in the order of their inserts.
macro_rules! token_params {
    ($t:expr; $($rest:expr),+ $(,)?) => {
        params![
            $t.token_hash.as_str(),
            &$t.client_id,
            $t.grant_id.as_deref(),
            &$t.family_id,
            &$t.subject,
            $t.scope.to_string(),
            to_json(&$t.audience),
            to_json(&$t.claims),
            $t.issued_at,
            $t.expires_at,
            $($rest),+
        ]
    };
}

fn rows(done: u64) -> bool {
    done == 1
}

/// Revokes the tokens of both tables whose `column` is `$1`, at `$2`; how many.
async fn revoke_where(
    tx: &mut SqlTx<'_>,
    statements: [&'static str; 2],
    key: &str,
    now: UnixTime,
) -> Result<u64, StoreError> {
    let mut revoked = 0;
    for sql in statements {
        revoked += tx.execute(sql, params![key, now]).await?;
    }
    Ok(revoked)
}

/// The statements that revoke every token with a given column value, access then refresh (a
/// refresh token revoked drops any response kept for a retry).
macro_rules! revoke_by {
    ($column:literal) => {
        [
            concat!(
                "UPDATE access_tokens SET revoked_at = $2 WHERE ",
                $column,
                " = $1 AND revoked_at IS NULL"
            ),
            concat!(
                "UPDATE refresh_tokens SET revoked_at = $2, successor = NULL WHERE ",
                $column,
                " = $1 AND revoked_at IS NULL"
            ),
        ]
    };
}

#[async_trait]
impl TokenRepository for SqlTx<'_> {
    async fn insert_access(&mut self, t: &AccessTokenRecord) -> Result<(), StoreError> {
        let params: Vec<Param<'_>> = token_params!(t; t.revoked_at);
        self.execute(
            "INSERT INTO access_tokens (token_hash, client_id, grant_id, family_id, subject, scope, \
             audience, data, issued_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            params,
        )
        .await?;
        Ok(())
    }

    async fn insert_refresh(&mut self, t: &RefreshTokenRecord) -> Result<(), StoreError> {
        let params: Vec<Param<'_>> = token_params!(
            t;
            t.used_at,
            t.reuse_count,
            t.successor.as_deref(),
            t.revoked_at,
        );
        self.execute(
            "INSERT INTO refresh_tokens (token_hash, client_id, grant_id, family_id, subject, scope, \
             audience, data, issued_at, expires_at, used_at, reuse_count, successor, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            params,
        )
        .await?;
        Ok(())
    }

    async fn access(
        &mut self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<AccessTokenRecord>>, StoreError> {
        self.optional(
            by_hash!("access_tokens", ""),
            params![hash.as_str()],
            access_lookup,
        )
        .await
    }

    async fn refresh(
        &mut self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<RefreshTokenRecord>>, StoreError> {
        self.optional(
            by_hash!("refresh_tokens", ", a.used_at, a.reuse_count, a.successor"),
            params![hash.as_str()],
            refresh_lookup,
        )
        .await
    }

    async fn claim_refresh(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE refresh_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL",
            params![hash.as_str(), now],
        )
        .await
        .map(rows)
    }

    async fn set_successor(&mut self, hash: &TokenHash, successor: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE refresh_tokens SET successor = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
            params![hash.as_str(), successor],
        )
        .await?;
        Ok(())
    }

    async fn count_reuse(&mut self, hash: &TokenHash, max: u32) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE refresh_tokens SET reuse_count = reuse_count + 1 WHERE token_hash = $1 \
             AND reuse_count < $2 AND revoked_at IS NULL AND successor IS NOT NULL",
            params![hash.as_str(), max],
        )
        .await
        .map(rows)
    }

    async fn expire_successors(
        &mut self,
        used_before: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE refresh_tokens SET successor = NULL WHERE token_hash IN \
             (SELECT token_hash FROM refresh_tokens WHERE successor IS NOT NULL AND used_at < $1 LIMIT $2)",
            params![used_before, limit],
        )
        .await
    }

    async fn revoke_access(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE access_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
            params![hash.as_str(), now],
        )
        .await
        .map(rows)
    }

    async fn revoke_family(&mut self, family_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        revoke_where(self, revoke_by!("family_id"), family_id, now).await
    }

    async fn revoke_grant(&mut self, grant_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        revoke_where(self, revoke_by!("grant_id"), grant_id, now).await
    }

    async fn revoke_client(&mut self, client_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        revoke_where(self, revoke_by!("client_id"), client_id, now).await
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        let access = self
            .purge_expired_kind(latchkey_core::janitor::DeadKind::AccessTokens, now, limit)
            .await?;
        let refresh = self
            .purge_expired_kind(latchkey_core::janitor::DeadKind::RefreshTokens, now, limit)
            .await?;
        Ok(access + refresh)
    }
}
