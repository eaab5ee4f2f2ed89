//! Clients and their secrets.

use async_trait::async_trait;
use latchkey_core::client::cache::ClientGuard;
use latchkey_core::client::{
    AuthMethod, Client, ClientFilter, ClientOrigin, ClientSecretRecord, ClientStatus, GrantType,
};
use latchkey_core::clock::UnixTime;
use latchkey_core::config::AccessTokenStrategy;
use latchkey_core::store::{ActiveClient, ClientRepository, StoreError};
use latchkey_types::Scope;

use crate::sql::{Columns, Param, from_json, params, parse_enum, to_json};
use crate::tx::SqlTx;

macro_rules! client_columns {
    () => {
        "id, client_name, redirect_uris, post_logout_redirect_uris, grant_types, response_types, scope, \
         audience, token_endpoint_auth_method, token_endpoint_auth_signing_alg, id_token_signed_response_alg, \
         userinfo_signed_response_alg, jwks, access_token_strategy, skip_consent, skip_logout_consent, owner, \
         logo_uri, client_uri, policy_uri, tos_uri, contacts, metadata, owner_account_id, status, created_at, \
         updated_at, origin, device_lifespan, logout_channels"
    };
}

/// Whether a [`ClientGuard`] holds: a row when the client `$1` exists, is active, is the version
/// cached (`updated_at` `$2`), and the secret that matched (`$3`, or NULL) exists and has not
/// expired at `$4`. The one definition of the guard.
const GUARD_HOLDS: &str = "SELECT 1 AS ok FROM clients c WHERE c.id = $1 AND c.status = 'active' \
     AND c.updated_at = $2 AND ($3 IS NULL OR EXISTS (SELECT 1 FROM client_secrets s \
     WHERE s.client_id = c.id AND s.id = $3 AND (s.expires_at IS NULL OR s.expires_at > $4)))";

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

fn client_from_row(row: &dyn Columns) -> Result<Client, StoreError> {
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
        origin: parse_enum("origin", &get_s("origin")?, ClientOrigin::parse)?,
        device_lifespan: from_json("device_lifespan", &get_s("device_lifespan")?)?,
        logout: from_json("logout_channels", &get_s("logout_channels")?)?,
    })
}

fn active_client(row: &dyn Columns) -> Result<ActiveClient, StoreError> {
    Ok(ActiveClient {
        owner_account_id: row.opt_text("owner_account_id")?,
    })
}

fn secret_from_row(r: &dyn Columns) -> Result<ClientSecretRecord, StoreError> {
    Ok(ClientSecretRecord {
        id: r.text("id")?,
        client_id: r.text("client_id")?,
        secret_hash: r.text("secret_hash")?,
        created_at: r.int("created_at")?,
        expires_at: r.opt_int("expires_at")?,
    })
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "a decoder of rows, as every other"
)]
fn exists(_: &dyn Columns) -> Result<(), StoreError> {
    Ok(())
}

/// Every column of `client_columns!()`, in order.
fn client_params(c: &Client) -> Vec<Param<'_>> {
    let grant_types: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    params![
        &c.id,
        &c.name,
        to_json(&c.redirect_uris),
        to_json(&c.post_logout_redirect_uris),
        to_json(&grant_types),
        to_json(&c.response_types),
        c.scope.to_string(),
        to_json(&c.audience),
        c.token_endpoint_auth_method.as_str(),
        c.token_endpoint_auth_signing_alg.as_deref(),
        c.id_token_signed_response_alg.as_deref(),
        c.userinfo_signed_response_alg.as_deref(),
        c.jwks.as_ref().map(to_json),
        strategy_to_str(c.access_token_strategy),
        c.skip_consent,
        c.skip_logout_consent,
        &c.owner,
        &c.logo_uri,
        &c.client_uri,
        &c.policy_uri,
        &c.tos_uri,
        to_json(&c.contacts),
        to_json(&c.metadata),
        c.owner_account_id.as_deref(),
        c.status.as_str(),
        c.created_at,
        c.updated_at,
        c.origin.as_str(),
        to_json(&c.device_lifespan),
        to_json(&c.logout),
    ]
}

#[async_trait]
impl ClientRepository for SqlTx<'_> {
    async fn insert(&mut self, client: &Client) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO clients (",
                client_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                 $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)"
            ),
            client_params(client),
        )
        .await?;
        Ok(())
    }

    async fn get(&mut self, id: &str) -> Result<Option<Client>, StoreError> {
        self.optional(
            concat!("SELECT ", client_columns!(), " FROM clients WHERE id = $1"),
            params![id],
            client_from_row,
        )
        .await
    }

    async fn active(&mut self, id: &str, lock: bool) -> Result<Option<ActiveClient>, StoreError> {
        const ACTIVE: &str =
            "SELECT owner_account_id FROM clients WHERE id = $1 AND status = 'active'";
        // SQLite has one writer, so a write transaction is alone already; PostgreSQL locks the
        // row.
        let sql = match (lock, self.backend()) {
            (true, crate::Backend::Postgres) => {
                "SELECT owner_account_id FROM clients WHERE id = $1 AND status = 'active' FOR UPDATE"
            }
            _ => ACTIVE,
        };
        self.optional(sql, params![id], active_client).await
    }

    async fn list(
        &mut self,
        filter: &ClientFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Client>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE ($1 IS NULL OR client_name = $1) AND ($2 IS NULL OR owner = $2) \
                 AND ($3 IS NULL OR owner_account_id = $3) AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5"
            ),
            params![
                filter.client_name.as_deref(),
                filter.owner.as_deref(),
                filter.owner_account_id.as_deref(),
                after,
                limit,
            ],
            client_from_row,
        )
        .await
    }

    async fn update(&mut self, c: &Client) -> Result<bool, StoreError> {
        // The same parameters as insert; id is $1.
        let done = self
            .execute(
                "UPDATE clients SET client_name = $2, redirect_uris = $3, post_logout_redirect_uris = $4, \
                 grant_types = $5, response_types = $6, scope = $7, audience = $8, token_endpoint_auth_method = $9, \
                 token_endpoint_auth_signing_alg = $10, id_token_signed_response_alg = $11, \
                 userinfo_signed_response_alg = $12, jwks = $13, access_token_strategy = $14, skip_consent = $15, \
                 skip_logout_consent = $16, owner = $17, logo_uri = $18, client_uri = $19, policy_uri = $20, \
                 tos_uri = $21, contacts = $22, metadata = $23, owner_account_id = $24, status = $25, \
                 created_at = $26, updated_at = $27, origin = $28, device_lifespan = $29, logout_channels = $30 WHERE id = $1",
                client_params(c),
            )
            .await?;
        Ok(done == 1)
    }

    async fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .execute("DELETE FROM clients WHERE id = $1", params![id])
            .await?;
        Ok(done == 1)
    }

    async fn insert_registration(
        &mut self,
        client_id: &str,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO client_registrations (client_id, token_hash, created_at) VALUES ($1, $2, $3)",
            params![client_id, token_hash, now],
        )
        .await?;
        Ok(())
    }

    async fn registration_token(&mut self, client_id: &str) -> Result<Option<String>, StoreError> {
        self.optional(
            "SELECT token_hash FROM client_registrations WHERE client_id = $1",
            params![client_id],
            |r| r.text("token_hash"),
        )
        .await
    }

    async fn upsert_document_client(&mut self, c: &Client) -> Result<(), StoreError> {
        // The same parameters as insert. The conflict clause is the same text on both engines.
        self.execute(
            concat!(
                "INSERT INTO clients (",
                client_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                 $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30) \
                 ON CONFLICT (id) DO UPDATE SET client_name = excluded.client_name, \
                 redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, \
                 response_types = excluded.response_types, scope = excluded.scope, \
                 token_endpoint_auth_method = excluded.token_endpoint_auth_method, jwks = excluded.jwks, \
                 logo_uri = excluded.logo_uri, client_uri = excluded.client_uri, \
                 policy_uri = excluded.policy_uri, tos_uri = excluded.tos_uri, contacts = excluded.contacts, \
                 updated_at = excluded.updated_at \
                 WHERE clients.origin = 'metadata_document'"
            ),
            client_params(c),
        )
        .await?;
        Ok(())
    }

    async fn insert_secret(&mut self, s: &ClientSecretRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            params![
                &s.id,
                &s.client_id,
                &s.secret_hash,
                s.created_at,
                s.expires_at
            ],
        )
        .await?;
        Ok(())
    }

    async fn secrets(&mut self, client_id: &str) -> Result<Vec<ClientSecretRecord>, StoreError> {
        self.all(
            "SELECT id, client_id, secret_hash, created_at, expires_at FROM client_secrets \
             WHERE client_id = $1 ORDER BY created_at DESC, id DESC",
            params![client_id],
            secret_from_row,
        )
        .await
    }

    async fn guard_holds(
        &mut self,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let found = self
            .optional(
                GUARD_HOLDS,
                params![
                    &guard.client_id,
                    guard.updated_at,
                    guard.secret_id.as_deref(),
                    now
                ],
                exists,
            )
            .await?;
        Ok(found.is_some())
    }

    async fn delete_secret(
        &mut self,
        client_id: &str,
        secret_id: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "DELETE FROM client_secrets WHERE client_id = $1 AND id = $2",
                params![client_id, secret_id],
            )
            .await?;
        Ok(done == 1)
    }
}
