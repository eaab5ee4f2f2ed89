//! The client registry: create, read, list, replace, patch and delete clients, and check their
//! secrets.

use std::sync::Arc;

use latchkey_types::ErrorCode;
use latchkey_types::client::OAuth2Client;

use super::cache::ClientCache;
use super::validate::{Fixed, client_from_wire, validate_client_id};
use super::{Client, ClientFilter, ClientOrigin, ClientSecretRecord, ClientStatus, MetadataError};
use crate::audit::{Actor, AuditEntry};
use crate::crypto::{b64, sha256, unb64};
use crate::deps::Deps;
use crate::entropy::EntropyExt as _;
use crate::secret::{SecretString, ct_eq};
use crate::store::{StoreError, Tx};

/// Default and largest page of the client list.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the client does not exist")]
    NotFound,
    #[error("a client with this id exists already")]
    Conflict,
    #[error("invalid client metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("the page token is not valid")]
    InvalidPageToken,
    #[error("the patch cannot be applied: {0}")]
    InvalidPatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ClientError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict => ErrorCode::Conflict,
            Self::Metadata(m) if m.is_redirect_uri() => ErrorCode::InvalidRedirectUri,
            Self::Metadata(_) => ErrorCode::InvalidClientMetadata,
            Self::InvalidPageToken | Self::InvalidPatch(_) => ErrorCode::InvalidRequest,
            Self::Store(_) => ErrorCode::ServerError,
        }
    }
}

/// A client just created, with its secret — the only time the secret is shown.
#[derive(Debug)]
pub struct CreatedClient {
    pub client: Client,
    pub secret: Option<SecretString>,
}

impl CreatedClient {
    /// The wire form, with the secret.
    pub fn to_wire(&self) -> OAuth2Client {
        let mut wire = self.client.to_wire();
        wire.client_secret = self
            .secret
            .as_ref()
            .map(|s| latchkey_types::Secret::new(s.expose()));
        wire
    }
}

/// One page of clients and the token of the next page, if any.
#[derive(Debug)]
pub struct ClientPage {
    pub clients: Vec<Client>,
    pub next_page_token: Option<String>,
}

const SECRET_PREFIX: &str = "lk_cs_";
const SHA256_SCHEME: &str = "sha256$";

/// Hashes a generated client secret for storage. Generated secrets carry 256 bits of entropy, so
/// a fast hash is as strong as a slow one and keeps client authentication cheap.
pub fn hash_client_secret(secret: &str) -> String {
    format!("{SHA256_SCHEME}{}", b64(&sha256(secret.as_bytes())))
}

/// Checks a presented secret against a stored hash, in constant time.
pub fn verify_client_secret(presented: &str, stored_hash: &str) -> bool {
    match stored_hash.strip_prefix(SHA256_SCHEME).and_then(unb64) {
        Some(expected) => ct_eq(&sha256(presented.as_bytes()), &expected),
        None => false,
    }
}

#[derive(Clone, Debug)]
pub struct ClientService {
    deps: Deps,
    /// Clients and secret hashes for authentication (see [`super::cache`]).
    pub(crate) cache: Arc<ClientCache>,
}

impl ClientService {
    pub fn new(deps: Deps) -> Self {
        Self {
            deps,
            cache: Arc::new(ClientCache::default()),
        }
    }

    /// Forgets what this process cached about a client (after changing it here). Other
    /// replicas need no notice: writes after a cached authentication are guarded.
    pub fn forget(&self, id: &str) {
        self.cache.invalidate(id);
    }

    pub(crate) fn new_secret(&self, client_id: &str) -> (SecretString, ClientSecretRecord) {
        let secret = format!("{SECRET_PREFIX}{}", self.deps.entropy.token());
        let record = ClientSecretRecord {
            id: self.deps.entropy.uuid().to_string(),
            client_id: client_id.to_owned(),
            secret_hash: hash_client_secret(&secret),
            created_at: self.deps.clock.now(),
            expires_at: None,
        };
        (SecretString::new(secret), record)
    }

    async fn audit(tx: &mut dyn Tx, entry: AuditEntry) -> Result<(), StoreError> {
        tx.audit().append(&entry).await
    }

    fn entry(
        &self,
        actor: &Actor,
        action: &str,
        client: &Client,
        details: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            id: self.deps.entropy.uuid().to_string(),
            occurred_at: self.deps.clock.now(),
            actor: actor.clone(),
            account_id: client.owner_account_id.clone(),
            action: action.to_owned(),
            target_kind: "client".to_owned(),
            target_id: client.id.clone(),
            details,
        }
    }

    /// Creates a client. A confidential client gets a generated secret, returned once.
    pub async fn create(
        &self,
        input: &OAuth2Client,
        actor: &Actor,
    ) -> Result<CreatedClient, ClientError> {
        let id = match input.client_id.as_deref() {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => self.deps.entropy.uuid().to_string(),
        };
        let now = self.deps.clock.now();
        let client = client_from_wire(
            input,
            Fixed {
                id,
                created_at: now,
                updated_at: now,
                status: ClientStatus::Active,
                owner_account_id: None,
                origin: ClientOrigin::Registered,
            },
        )?;
        self.insert(client, actor).await
    }

    /// Stores a validated client and, when it authenticates with a secret, a new secret.
    pub async fn insert(
        &self,
        client: Client,
        actor: &Actor,
    ) -> Result<CreatedClient, ClientError> {
        self.insert_registered(client, actor, None).await
    }

    /// [`ClientService::insert`] for a client that registered itself, with the hash of its
    /// registration access token, in the same transaction.
    pub async fn insert_with_registration(
        &self,
        client: Client,
        actor: &Actor,
        token_hash: &str,
    ) -> Result<CreatedClient, ClientError> {
        self.insert_registered(client, actor, Some(token_hash))
            .await
    }

    async fn insert_registered(
        &self,
        client: Client,
        actor: &Actor,
        registration: Option<&str>,
    ) -> Result<CreatedClient, ClientError> {
        let mut tx = self.deps.store.begin().await?;
        match tx.clients().insert(&client).await {
            Err(StoreError::Conflict(_)) => return Err(ClientError::Conflict),
            other => other?,
        }
        if let Some(hash) = registration {
            tx.clients()
                .insert_registration(&client.id, hash, client.created_at)
                .await?;
        }
        let secret = if client.token_endpoint_auth_method.uses_secret() {
            let (secret, record) = self.new_secret(&client.id);
            tx.clients().insert_secret(&record).await?;
            Some(secret)
        } else {
            None
        };
        let entry = self.entry(
            actor,
            "client.create",
            &client,
            serde_json::json!({ "name": client.name }),
        );
        Self::audit(tx.as_mut(), entry).await?;
        tx.commit().await?;
        Ok(CreatedClient { client, secret })
    }

    pub async fn get(&self, id: &str) -> Result<Client, ClientError> {
        let mut tx = self.deps.store.read().await?;
        tx.clients().get(id).await?.ok_or(ClientError::NotFound)
    }

    pub async fn list(
        &self,
        filter: &ClientFilter,
        page_size: Option<u32>,
        page_token: Option<&str>,
    ) -> Result<ClientPage, ClientError> {
        let limit = page_size
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let after = match page_token.filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => {
                let raw = unb64(t).ok_or(ClientError::InvalidPageToken)?;
                let id = String::from_utf8(raw).map_err(|_| ClientError::InvalidPageToken)?;
                validate_client_id(&id).map_err(|_| ClientError::InvalidPageToken)?;
                Some(id)
            }
        };
        let mut tx = self.deps.store.read().await?;
        let mut clients = tx
            .clients()
            .list(filter, after.as_deref(), limit + 1)
            .await?;
        let next_page_token = if clients.len() > limit as usize {
            clients.truncate(limit as usize);
            clients.last().map(|c| b64(c.id.as_bytes()))
        } else {
            None
        };
        Ok(ClientPage {
            clients,
            next_page_token,
        })
    }

    /// Replaces a client's metadata (Hydra's PUT). The id, secrets, owner account and status stay.
    pub async fn replace(
        &self,
        id: &str,
        input: &OAuth2Client,
        actor: &Actor,
    ) -> Result<Client, ClientError> {
        if input
            .client_id
            .as_deref()
            .is_some_and(|c| !c.is_empty() && c != id)
        {
            return Err(MetadataError::new(
                "client_id",
                "does not match the client in the path; ids cannot change",
            )
            .into());
        }
        let mut tx = self.deps.store.begin().await?;
        let current = tx.clients().get(id).await?.ok_or(ClientError::NotFound)?;
        let client = client_from_wire(
            input,
            Fixed {
                id: current.id.clone(),
                created_at: current.created_at,
                updated_at: self.deps.clock.now(),
                status: current.status,
                owner_account_id: current.owner_account_id.clone(),
                origin: current.origin,
            },
        )?;
        if !tx.clients().update(&client).await? {
            return Err(ClientError::NotFound);
        }
        let entry = self.entry(actor, "client.update", &client, serde_json::json!({}));
        Self::audit(tx.as_mut(), entry).await?;
        tx.commit().await?;
        self.forget(id);
        Ok(client)
    }

    /// Applies a JSON Patch (RFC 6902) to the client's wire form, then replaces it (Hydra's PATCH).
    pub async fn patch(
        &self,
        id: &str,
        patch: &json_patch::Patch,
        actor: &Actor,
    ) -> Result<Client, ClientError> {
        let current = self.get(id).await?;
        let mut doc = serde_json::to_value(current.to_wire())
            .map_err(|e| ClientError::InvalidPatch(e.to_string()))?;
        json_patch::patch(&mut doc, patch).map_err(|e| ClientError::InvalidPatch(e.to_string()))?;
        let input: OAuth2Client =
            serde_json::from_value(doc).map_err(|e| ClientError::InvalidPatch(e.to_string()))?;
        self.replace(id, &input, actor).await
    }

    /// Deletes a client; its secrets, grants and tokens go with it.
    pub async fn delete(&self, id: &str, actor: &Actor) -> Result<(), ClientError> {
        let mut tx = self.deps.store.begin().await?;
        let client = tx.clients().get(id).await?.ok_or(ClientError::NotFound)?;
        tx.clients().delete(id).await?;
        let entry = self.entry(
            actor,
            "client.delete",
            &client,
            serde_json::json!({ "name": client.name }),
        );
        Self::audit(tx.as_mut(), entry).await?;
        tx.revocation_log()
            .append(
                crate::revocations::RevocationKind::ClientDeleted,
                &crate::revocations::RevokedIds::client(id),
                self.deps.clock.now(),
            )
            .await?;
        tx.commit().await?;
        self.forget(id);
        Ok(())
    }

    /// True when `secret` is one of the client's unexpired secrets.
    pub async fn verify_secret(
        &self,
        tx: &mut dyn Tx,
        client_id: &str,
        secret: &SecretString,
    ) -> Result<bool, StoreError> {
        let now = self.deps.clock.now();
        let records = tx.clients().secrets(client_id).await?;
        // Check every record, so the time taken does not say which one matched.
        let mut ok = false;
        for r in &records {
            let live = r.expires_at.is_none_or(|t| t > now);
            ok |= verify_client_secret(secret.expose(), &r.secret_hash) && live;
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hashes_verify_only_their_secret() {
        let h = hash_client_secret("lk_cs_abc");
        assert!(h.starts_with("sha256$"));
        assert!(verify_client_secret("lk_cs_abc", &h));
        assert!(!verify_client_secret("lk_cs_abd", &h));
        assert!(!verify_client_secret("lk_cs_abc", "bcrypt$whatever"));
    }
}
