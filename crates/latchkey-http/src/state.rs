//! What every handler can reach.

use std::sync::Arc;

use latchkey_core::client::ClientService;
use latchkey_core::deps::Deps;
use latchkey_core::keys::KeyService;
use latchkey_core::oauth::Engine;
use latchkey_core::secret::SecretString;

/// Settings the HTTP layer needs beyond the engine's, resolved at start-up.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// When set, the admin API requires `Authorization: Bearer <token>`.
    pub admin_token: Option<SecretString>,
    /// A header set by a trusted reverse proxy with the client's address (its first entry).
    pub client_ip_header: Option<axum::http::HeaderName>,
}

/// The state shared by every handler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub deps: Deps,
    pub clients: ClientService,
    pub keys: KeyService,
    pub engine: Engine,
    pub settings: Arc<HttpSettings>,
}

impl AppState {
    pub fn new(engine: Engine, keys: KeyService, settings: HttpSettings) -> Self {
        let deps = engine.deps().clone();
        Self {
            clients: ClientService::new(deps.clone()),
            keys,
            deps,
            engine,
            settings: Arc::new(settings),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.engine.settings().issuer
    }
}
