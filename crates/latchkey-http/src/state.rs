//! What every handler can reach.

use std::sync::Arc;

use latchkey_core::client::ClientService;
use latchkey_core::deps::Deps;
use latchkey_core::keys::KeyService;
use latchkey_core::secret::SecretString;

/// Settings the HTTP layer needs, resolved at start-up.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The issuer URL, without a trailing slash.
    pub issuer: String,
    /// When set, the admin API requires `Authorization: Bearer <token>`.
    pub admin_token: Option<SecretString>,
}

/// The state shared by every handler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub deps: Deps,
    pub clients: ClientService,
    pub keys: KeyService,
    pub settings: Arc<HttpSettings>,
}

impl AppState {
    pub fn new(deps: Deps, keys: KeyService, settings: HttpSettings) -> Self {
        Self {
            clients: ClientService::new(deps.clone()),
            keys,
            deps,
            settings: Arc::new(settings),
        }
    }
}
