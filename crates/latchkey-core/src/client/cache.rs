//! An in-process cache of clients and their secret hashes, so that client authentication on the
//! token endpoint costs no query.
//!
//! The cache is never trusted alone. Authenticating against it yields a [`ClientGuard`]: what the
//! decision rested on (the client is active, its row is the version that was cached, the secret
//! that matched still exists and has not expired). Every write that follows a cached
//! authentication is conditional on the guard, in the same statement or transaction, so a client
//! suspended, changed, deleted or whose secret was removed on another replica — or directly in the
//! database — stops at once, everywhere. When the guard fails the caller drops the entry and
//! authenticates again from the database, which gives the exact answer (`client suspended`,
//! `wrong client secret`, …).
//!
//! Entries are dropped when this process changes a client, and expire after [`CACHE_TTL`]
//! seconds in any case: a changed client whose `updated_at` did not move (two changes in one
//! second on two replicas) is seen within that delay. A secret that is not in the cached entry
//! (just added by a rotation) makes the caller reload the entry before refusing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Client, ClientSecretRecord};
use crate::clock::UnixTime;

/// Seconds an entry is used before it is read again.
pub const CACHE_TTL: i64 = 10;
/// Most clients kept; when full, the cache starts over.
pub const CACHE_CAPACITY: usize = 10_000;

/// What a cached authentication rested on. A write made for the client is valid only while its
/// row is still active and unchanged (`updated_at`) and, for a secret, while that secret exists
/// and has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGuard {
    pub client_id: String,
    pub updated_at: UnixTime,
    /// The id of the secret that matched, for secret-based methods.
    pub secret_id: Option<String>,
}

/// A client as cached: its row and its secrets' hashes.
#[derive(Debug)]
pub(crate) struct CachedClient {
    pub client: Arc<Client>,
    pub secrets: Vec<ClientSecretRecord>,
    pub loaded_at: UnixTime,
}

#[derive(Debug, Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, Arc<CachedClient>>>,
}

impl ClientCache {
    pub(crate) fn get(&self, id: &str, now: UnixTime) -> Option<Arc<CachedClient>> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(id)
            .filter(|e| now - e.loaded_at < CACHE_TTL && e.loaded_at <= now)
            .cloned()
    }

    pub(crate) fn put(&self, entry: Arc<CachedClient>) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(&entry.client.id) {
            entries.clear();
        }
        entries.insert(entry.client.id.clone(), entry);
    }

    /// Forgets a client: it changed, or a guarded write found it changed.
    pub fn invalidate(&self, id: &str) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{AuthMethod, ClientStatus};

    fn client(id: &str) -> Client {
        Client {
            id: id.into(),
            name: String::new(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            response_types: vec![],
            scope: latchkey_types::Scope::default(),
            audience: vec![],
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            token_endpoint_auth_signing_alg: None,
            id_token_signed_response_alg: None,
            userinfo_signed_response_alg: None,
            jwks: None,
            access_token_strategy: None,
            skip_consent: false,
            skip_logout_consent: false,
            logout: crate::client::LogoutChannels::default(),
            owner: String::new(),
            logo_uri: String::new(),
            client_uri: String::new(),
            policy_uri: String::new(),
            tos_uri: String::new(),
            contacts: vec![],
            metadata: serde_json::Value::Null,
            owner_account_id: None,
            status: ClientStatus::Active,
            created_at: 0,
            updated_at: 0,
            origin: crate::client::ClientOrigin::Registered,
            device_lifespan: crate::client::Lifespan::default(),
        }
    }

    #[test]
    fn entries_expire_and_can_be_invalidated() {
        let cache = ClientCache::default();
        cache.put(Arc::new(CachedClient {
            client: Arc::new(client("a")),
            secrets: vec![],
            loaded_at: 100,
        }));
        assert!(cache.get("a", 100).is_some());
        assert!(cache.get("a", 100 + CACHE_TTL - 1).is_some());
        assert!(cache.get("a", 100 + CACHE_TTL).is_none(), "expired");
        assert!(cache.get("a", 99).is_none(), "clock moved back");
        cache.invalidate("a");
        assert!(cache.get("a", 100).is_none());
    }
}
