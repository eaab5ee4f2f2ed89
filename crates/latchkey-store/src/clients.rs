//! Clients and their secrets.

use async_trait::async_trait;
use latchkey_core::client::cache::ClientGuard;
use latchkey_core::client::{
    AuthMethod, Client, ClientFilter, ClientSecretRecord, ClientStatus, GrantType,
};
use latchkey_core::clock::UnixTime;
use latchkey_core::config::AccessTokenStrategy;
use latchkey_core::store::{ActiveClient, ClientRepository, StoreError};
use latchkey_types::Scope;
use sqlx::{Any, Row as _};

use crate::columns::Columns;
use crate::error::{from_json, map_err, parse_enum, to_json};
use crate::tokens::{bind_params, guard_params};
use crate::tx::SqlTx;

macro_rules! client_columns {
    () => {
        "id, client_name, redirect_uris, post_logout_redirect_uris, grant_types, response_types, scope, \
         audience, token_endpoint_auth_method, token_endpoint_auth_signing_alg, id_token_signed_response_alg, \
         userinfo_signed_response_alg, jwks, access_token_strategy, skip_consent, skip_logout_consent, owner, \
         logo_uri, client_uri, policy_uri, tos_uri, contacts, metadata, owner_account_id, status, created_at, \
         updated_at"
    };
}

/// The condition of a [`ClientGuard`] on the client row `c`: `$1` the client id, `$2` the
/// `updated_at` cached, `$3` the id of the secret that matched (or NULL), `$4` now. Other
/// statements use it with their own parameter numbers (see `tokens.rs`).
macro_rules! guard_holds {
    () => {
        "c.id = $1 AND c.status = 'active' AND c.updated_at = $2 AND ($3 IS NULL OR EXISTS \
         (SELECT 1 FROM client_secrets s WHERE s.client_id = c.id AND s.id = $3 \
         AND (s.expires_at IS NULL OR s.expires_at > $4)))"
    };
}
pub(crate) use guard_holds;

/// Whether a [`ClientGuard`] holds: a row when it does.
pub(crate) const GUARD_HOLDS: &str =
    concat!("SELECT 1 AS ok FROM clients c WHERE ", guard_holds!());

fn strategy_to_str(s: Option<AccessTokenStrategy>) -> Option<&'static str> {
    s.map(|s| match s {
        AccessTokenStrategy::Opaque => "opaque",
        AccessTokenStrategy::Jwt => "jwt",
    })
}

fn strategy_from_str(s: &str) -> Option<AccessTokenStrategy> {
    match s {
        "opaque" => Some(AccessTokenStrategy::Opaque),
        "jwt" => Some(AccessTokenStrategy::Jwt),
        _ => None,
    }
}

pub(crate) fn client_from_row(row: &impl Columns) -> Result<Client, StoreError> {
    let get_s = |c: &str| row.text(c);
    let get_os = |c: &str| row.opt_text(c);
    let get_i = |c: &str| row.int(c);
    let grant_types: Vec<String> = from_json("grant_types", &get_s("grant_types")?)?;
    Ok(Client {
        id: get_s("id")?,
        name: get_s("client_name")?,
        redirect_uris: from_json("redirect_uris", &get_s("redirect_uris")?)?,
        post_logout_redirect_uris: from_json(
            "post_logout_redirect_uris",
            &get_s("post_logout_redirect_uris")?,
        )?,
        grant_types: grant_types
            .iter()
            .map(|g| parse_enum("grant_types", g, GrantType::parse))
            .collect::<Result<_, _>>()?,
        response_types: from_json("response_types", &get_s("response_types")?)?,
        scope: Scope::parse(&get_s("scope")?)
            .map_err(|e| StoreError::Corrupt(format!("scope: {e}")))?,
        audience: from_json("audience", &get_s("audience")?)?,
        token_endpoint_auth_method: parse_enum(
            "token_endpoint_auth_method",
            &get_s("token_endpoint_auth_method")?,
            AuthMethod::parse,
        )?,
        token_endpoint_auth_signing_alg: get_os("token_endpoint_auth_signing_alg")?,
        id_token_signed_response_alg: get_os("id_token_signed_response_alg")?,
        userinfo_signed_response_alg: get_os("userinfo_signed_response_alg")?,
        jwks: get_os("jwks")?.map(|j| from_json("jwks", &j)).transpose()?,
        access_token_strategy: get_os("access_token_strategy")?
            .map(|s| parse_enum("access_token_strategy", &s, strategy_from_str))
            .transpose()?,
        skip_consent: get_i("skip_consent")? != 0,
        skip_logout_consent: get_i("skip_logout_consent")? != 0,
        owner: get_s("owner")?,
        logo_uri: get_s("logo_uri")?,
        client_uri: get_s("client_uri")?,
        policy_uri: get_s("policy_uri")?,
        tos_uri: get_s("tos_uri")?,
        contacts: from_json("contacts", &get_s("contacts")?)?,
        metadata: from_json("metadata", &get_s("metadata")?)?,
        owner_account_id: get_os("owner_account_id")?,
        status: parse_enum("status", &get_s("status")?, ClientStatus::parse)?,
        created_at: get_i("created_at")?,
        updated_at: get_i("updated_at")?,
    })
}

/// A client by its id: `$1`.
pub(crate) const CLIENT_BY_ID: &str =
    concat!("SELECT ", client_columns!(), " FROM clients WHERE id = $1");

/// The client `$1` when it exists and is active: a row with its owning account.
pub(crate) const CLIENT_ACTIVE: &str =
    "SELECT owner_account_id FROM clients WHERE id = $1 AND status = 'active'";

/// An active client from a row of [`CLIENT_ACTIVE`] (of either driver).
pub(crate) fn active_client(row: &impl Columns) -> Result<ActiveClient, StoreError> {
    Ok(ActiveClient {
        owner_account_id: row.opt_text("owner_account_id")?,
    })
}

/// Binds every column of `client_columns!()` in order.
fn bind_client<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    c: &'q Client,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    let grant_types: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    q.bind(c.id.as_str())
        .bind(c.name.as_str())
        .bind(to_json(&c.redirect_uris))
        .bind(to_json(&c.post_logout_redirect_uris))
        .bind(to_json(&grant_types))
        .bind(to_json(&c.response_types))
        .bind(c.scope.to_string())
        .bind(to_json(&c.audience))
        .bind(c.token_endpoint_auth_method.as_str())
        .bind(c.token_endpoint_auth_signing_alg.as_deref())
        .bind(c.id_token_signed_response_alg.as_deref())
        .bind(c.userinfo_signed_response_alg.as_deref())
        .bind(c.jwks.as_ref().map(to_json))
        .bind(strategy_to_str(c.access_token_strategy))
        .bind(i64::from(c.skip_consent))
        .bind(i64::from(c.skip_logout_consent))
        .bind(c.owner.as_str())
        .bind(c.logo_uri.as_str())
        .bind(c.client_uri.as_str())
        .bind(c.policy_uri.as_str())
        .bind(c.tos_uri.as_str())
        .bind(to_json(&c.contacts))
        .bind(to_json(&c.metadata))
        .bind(c.owner_account_id.as_deref())
        .bind(c.status.as_str())
        .bind(c.created_at)
        .bind(c.updated_at)
}

#[async_trait]
impl ClientRepository for SqlTx {
    async fn insert(&mut self, client: &Client) -> Result<(), StoreError> {
        let q = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
             $20, $21, $22, $23, $24, $25, $26, $27)"
        ));
        bind_client(q, client)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get(&mut self, id: &str) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(CLIENT_BY_ID)
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn active(&mut self, id: &str) -> Result<Option<ActiveClient>, StoreError> {
        let row = sqlx::query(CLIENT_ACTIVE)
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        row.as_ref().map(active_client).transpose()
    }

    async fn list(
        &mut self,
        filter: &ClientFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE ($1 IS NULL OR client_name = $1) AND ($2 IS NULL OR owner = $2) \
             AND ($3 IS NULL OR owner_account_id = $3) AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5"
        ))
        .bind(filter.client_name.as_deref())
        .bind(filter.owner.as_deref())
        .bind(filter.owner_account_id.as_deref())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn update(&mut self, c: &Client) -> Result<bool, StoreError> {
        // The same binding order as insert; id is $1.
        let q = sqlx::query(
            "UPDATE clients SET client_name = $2, redirect_uris = $3, post_logout_redirect_uris = $4, \
             grant_types = $5, response_types = $6, scope = $7, audience = $8, token_endpoint_auth_method = $9, \
             token_endpoint_auth_signing_alg = $10, id_token_signed_response_alg = $11, \
             userinfo_signed_response_alg = $12, jwks = $13, access_token_strategy = $14, skip_consent = $15, \
             skip_logout_consent = $16, owner = $17, logo_uri = $18, client_uri = $19, policy_uri = $20, \
             tos_uri = $21, contacts = $22, metadata = $23, owner_account_id = $24, status = $25, \
             created_at = $26, updated_at = $27 WHERE id = $1",
        );
        let done = bind_client(q, c)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_secret(&mut self, s: &ClientSecretRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(s.id.as_str())
        .bind(s.client_id.as_str())
        .bind(s.secret_hash.as_str())
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn secrets(&mut self, client_id: &str) -> Result<Vec<ClientSecretRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, client_id, secret_hash, created_at, expires_at FROM client_secrets \
             WHERE client_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(client_id)
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(ClientSecretRecord {
                    id: r.try_get("id").map_err(map_err)?,
                    client_id: r.try_get("client_id").map_err(map_err)?,
                    secret_hash: r.try_get("secret_hash").map_err(map_err)?,
                    created_at: r.try_get("created_at").map_err(map_err)?,
                    expires_at: r.try_get("expires_at").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn guard_holds(
        &mut self,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let row = bind_params(sqlx::query(GUARD_HOLDS), guard_params(guard, now))
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn delete_secret(
        &mut self,
        client_id: &str,
        secret_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM client_secrets WHERE client_id = $1 AND id = $2")
            .bind(client_id)
            .bind(secret_id)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
