//! Signing keys.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::keys::{KeyState, SigningAlg, StoredSigningKey};
use latchkey_core::store::{SigningKeyRepository, StoreError};

use crate::sql::{Columns, params, parse_enum};
use crate::tx::SqlTx;

fn key_from_row(r: &dyn Columns) -> Result<StoredSigningKey, StoreError> {
    Ok(StoredSigningKey {
        kid: r.text("kid")?,
        alg: parse_enum("alg", &r.text("alg")?, SigningAlg::parse)?,
        private_key: r.text("private_key")?,
        state: parse_enum("state", &r.text("state")?, KeyState::parse)?,
        created_at: r.int("created_at")?,
        retired_at: r.opt_int("retired_at")?,
        expires_at: r.opt_int("expires_at")?,
    })
}

#[async_trait]
impl SigningKeyRepository for SqlTx<'_> {
    async fn insert(&mut self, k: &StoredSigningKey) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO signing_keys (kid, alg, private_key, state, created_at, retired_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            params![
                &k.kid,
                k.alg.as_str(),
                &k.private_key,
                k.state.as_str(),
                k.created_at,
                k.retired_at,
                k.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn list(&mut self, now: UnixTime) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.all(
            "SELECT kid, alg, private_key, state, created_at, retired_at, expires_at FROM signing_keys \
             WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at DESC, kid DESC",
            params![now],
            key_from_row,
        )
        .await
    }

    async fn retire(
        &mut self,
        kid: &str,
        retired_at: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE signing_keys SET state = 'retired', retired_at = $2, expires_at = $3 \
                 WHERE kid = $1 AND state = 'active'",
                params![kid, retired_at, expires_at],
            )
            .await?;
        Ok(done == 1)
    }

    async fn delete_expired(&mut self, now: UnixTime) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= $1",
            params![now],
        )
        .await
    }
}
