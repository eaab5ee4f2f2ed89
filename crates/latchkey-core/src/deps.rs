//! What every service is built from: storage, time, randomness and the system secrets.

use std::sync::Arc;

use crate::clock::Clock;
use crate::crypto::SystemSecrets;
use crate::entropy::Entropy;
use crate::store::Store;

/// The shared dependencies of the services. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub secrets: Arc<SystemSecrets>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}
