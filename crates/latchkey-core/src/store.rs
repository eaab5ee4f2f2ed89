//! The storage traits. The services open a unit of work ([`Store::begin`] for a transaction,
//! [`Store::read`] for reads), use the repositories it hands out, and commit; dropping an
//! uncommitted transaction rolls it back.
//!
//! Lookups return `Ok(None)` for "not found": absence is not an error. Steps that must be atomic
//! (consuming a code, rotating a refresh token) are single statements in the implementations.

use async_trait::async_trait;

use crate::audit::{AuditEntry, AuditFilter};
use crate::client::{Client, ClientFilter, ClientSecretRecord};
use crate::clock::UnixTime;
use crate::keys::StoredSigningKey;

/// A storage failure. Not found is never an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write (e.g. a client id that exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
    /// A stored value could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The storage engine.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Opens a read-write transaction.
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// A unit of work for reads only, outside any transaction; `commit` is a no-op.
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Answers when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A unit of work: the repositories, then `commit`.
#[async_trait]
pub trait Tx: Send {
    fn clients(&mut self) -> &mut dyn ClientRepository;
    fn signing_keys(&mut self) -> &mut dyn SigningKeyRepository;
    fn audit(&mut self) -> &mut dyn AuditRepository;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ClientRepository: Send {
    /// Inserts a client; `Conflict` when its id exists.
    async fn insert(&mut self, client: &Client) -> Result<(), StoreError>;
    async fn get(&mut self, id: &str) -> Result<Option<Client>, StoreError>;
    /// Clients ordered by id, after `after`, at most `limit`.
    async fn list(
        &mut self,
        filter: &ClientFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Client>, StoreError>;
    /// Replaces a client's fields; false when it does not exist.
    async fn update(&mut self, client: &Client) -> Result<bool, StoreError>;
    /// Deletes a client and, by cascade, everything that belongs to it; false when it did not exist.
    async fn delete(&mut self, id: &str) -> Result<bool, StoreError>;
    async fn insert_secret(&mut self, secret: &ClientSecretRecord) -> Result<(), StoreError>;
    /// The client's secrets, newest first.
    async fn secrets(&mut self, client_id: &str) -> Result<Vec<ClientSecretRecord>, StoreError>;
    /// Deletes the given secret; false when it did not exist.
    async fn delete_secret(&mut self, client_id: &str, secret_id: &str)
    -> Result<bool, StoreError>;
}

#[async_trait]
pub trait SigningKeyRepository: Send {
    async fn insert(&mut self, key: &StoredSigningKey) -> Result<(), StoreError>;
    /// Every key that is not expired at `now`, newest first.
    async fn list(&mut self, now: UnixTime) -> Result<Vec<StoredSigningKey>, StoreError>;
    /// Marks a key retired: it no longer signs, and it leaves the JWKS at `expires_at`.
    async fn retire(
        &mut self,
        kid: &str,
        retired_at: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Deletes keys that expired before `now`; returns how many.
    async fn delete_expired(&mut self, now: UnixTime) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait AuditRepository: Send {
    async fn append(&mut self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Entries newest first.
    async fn list(
        &mut self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
