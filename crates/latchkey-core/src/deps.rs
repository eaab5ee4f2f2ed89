//! What every service is built from: storage, time, randomness and the system secrets.

use std::sync::Arc;

use crate::clock::Clock;
use crate::crypto::{LookupValue, OpaqueToken, SystemSecrets, TokenKind, mint_lookup_value};
use crate::entropy::{Entropy, EntropyExt as _};
use crate::store::Store;

/// The shared dependencies of the services. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub secrets: Arc<SystemSecrets>,
}

impl Deps {
    /// A new opaque token of `kind`, minted now.
    pub fn mint(&self, kind: TokenKind) -> OpaqueToken {
        OpaqueToken::mint(
            kind,
            self.clock.now_millis(),
            self.entropy.as_ref(),
            &self.secrets,
        )
    }

    /// A new bearer value that is only looked up (a challenge, a verifier, a session cookie),
    /// minted now, with its storage key (see [`mint_lookup_value`]).
    pub fn mint_lookup_value(&self) -> LookupValue {
        mint_lookup_value(self.clock.now_millis(), self.entropy.as_ref())
    }

    /// A new time-ordered id (a version 7 UUID) for a row written on a hot path: rows written
    /// one after another get neighbouring keys, so the table's index grows at its end.
    pub fn ordered_id(&self) -> String {
        self.entropy.uuid_v7(self.clock.now_millis()).to_string()
    }
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}
