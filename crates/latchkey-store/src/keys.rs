//! Signing keys.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::keys::{KeyState, SigningAlg, StoredSigningKey};
use latchkey_core::store::{SigningKeyRepository, StoreError};
use sqlx::Row as _;

use crate::error::{map_err, parse_enum};
use crate::tx::SqlTx;

#[async_trait]
impl SigningKeyRepository for SqlTx {
    async fn insert(&mut self, k: &StoredSigningKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, state, created_at, retired_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(k.kid.as_str())
        .bind(k.alg.as_str())
        .bind(k.private_key.as_str())
        .bind(k.state.as_str())
        .bind(k.created_at)
        .bind(k.retired_at)
        .bind(k.expires_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list(&mut self, now: UnixTime) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_key, state, created_at, retired_at, expires_at FROM signing_keys \
             WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at DESC, kid DESC",
        )
        .bind(now)
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let alg: String = r.try_get("alg").map_err(map_err)?;
                let state: String = r.try_get("state").map_err(map_err)?;
                Ok(StoredSigningKey {
                    kid: r.try_get("kid").map_err(map_err)?,
                    alg: parse_enum("alg", &alg, SigningAlg::parse)?,
                    private_key: r.try_get("private_key").map_err(map_err)?,
                    state: parse_enum("state", &state, KeyState::parse)?,
                    created_at: r.try_get("created_at").map_err(map_err)?,
                    retired_at: r.try_get("retired_at").map_err(map_err)?,
                    expires_at: r.try_get("expires_at").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn retire(
        &mut self,
        kid: &str,
        retired_at: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET state = 'retired', retired_at = $2, expires_at = $3 \
             WHERE kid = $1 AND state = 'active'",
        )
        .bind(kid)
        .bind(retired_at)
        .bind(expires_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired(&mut self, now: UnixTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= $1",
        )
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
