//! Issuers trusted for the JWT bearer grant (RFC 7523 §2.1).

use async_trait::async_trait;
use latchkey_core::oauth::jwt_bearer::TrustedIssuer;
use latchkey_core::store::{StoreError, TrustedIssuerRepository};
use latchkey_types::Scope;

use crate::sql::{Columns, from_json, params, to_json};
use crate::tx::SqlTx;

macro_rules! trust_columns {
    () => {
        "id, issuer, subject, allow_any_subject, scope, key_id, jwk, expires_at, created_at"
    };
}

fn trust_from_row(r: &dyn Columns) -> Result<TrustedIssuer, StoreError> {
    Ok(TrustedIssuer {
        id: r.text("id")?,
        issuer: r.text("issuer")?,
        subject: r.text("subject")?,
        allow_any_subject: r.int("allow_any_subject")? != 0,
        scope: Scope::parse(&r.text("scope")?)
            .map_err(|e| StoreError::Corrupt(format!("scope: {e}")))?,
        key_id: r.text("key_id")?,
        jwk: from_json("jwk", &r.text("jwk")?)?,
        expires_at: r.int("expires_at")?,
        created_at: r.int("created_at")?,
    })
}

#[async_trait]
impl TrustedIssuerRepository for SqlTx<'_> {
    async fn insert(&mut self, t: &TrustedIssuer) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO trusted_jwt_issuers (",
                trust_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            params![
                &t.id,
                &t.issuer,
                &t.subject,
                t.allow_any_subject,
                t.scope.to_string(),
                &t.key_id,
                to_json(&t.jwk),
                t.expires_at,
                t.created_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn get(&mut self, id: &str) -> Result<Option<TrustedIssuer>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                trust_columns!(),
                " FROM trusted_jwt_issuers WHERE id = $1"
            ),
            params![id],
            trust_from_row,
        )
        .await
    }

    async fn list(&mut self, issuer: Option<&str>) -> Result<Vec<TrustedIssuer>, StoreError> {
        match issuer {
            Some(i) => self.for_issuer(i).await,
            None => {
                self.all(
                    concat!(
                        "SELECT ",
                        trust_columns!(),
                        " FROM trusted_jwt_issuers ORDER BY created_at, id"
                    ),
                    params![],
                    trust_from_row,
                )
                .await
            }
        }
    }

    async fn for_issuer(&mut self, issuer: &str) -> Result<Vec<TrustedIssuer>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                trust_columns!(),
                " FROM trusted_jwt_issuers WHERE issuer = $1 ORDER BY created_at, id"
            ),
            params![issuer],
            trust_from_row,
        )
        .await
    }

    async fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .execute("DELETE FROM trusted_jwt_issuers WHERE id = $1", params![id])
            .await?;
        Ok(done == 1)
    }
}
