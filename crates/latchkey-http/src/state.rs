//! What every handler can reach.

use std::sync::Arc;

use latchkey_core::client::ClientService;
use latchkey_core::deps::Deps;
use latchkey_core::keys::KeyService;
use latchkey_core::oauth::Engine;
use latchkey_core::platform::catalog::Catalog;
use latchkey_core::platform::dns::NoDns;
use latchkey_core::platform::{Platform, PlatformSettings};
use latchkey_core::secret::SecretString;

use crate::platform_io::TokioBlocking;

/// Settings the HTTP layer needs beyond the engine's, resolved at start-up.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// When set, the admin API requires `Authorization: Bearer <token>`.
    pub admin_token: Option<SecretString>,
    /// A header set by a trusted reverse proxy with the client's address (its first entry).
    pub client_ip_header: Option<axum::http::HeaderName>,
}

/// The state shared by every handler: one pointer, so that the clone axum makes for every request
/// is one reference count, not one per service.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What [`AppState`] points to.
#[derive(Clone, Debug)]
pub struct Services {
    pub deps: Deps,
    pub clients: ClientService,
    pub keys: KeyService,
    pub engine: Engine,
    pub platform: Platform,
    pub settings: Arc<HttpSettings>,
}

impl AppState {
    /// The state with a platform of the built-in catalog and no DNS; see
    /// [`AppState::with_platform`].
    pub fn new(engine: Engine, keys: KeyService, settings: HttpSettings) -> Self {
        let deps = engine.deps().clone();
        let platform = Platform::new(
            engine.clone(),
            Catalog::builtin(),
            Arc::new(TokioBlocking),
            Arc::new(NoDns),
            PlatformSettings {
                remembered_session_ttl: engine.settings().auth_session_ttl,
                ..PlatformSettings::from_config(&latchkey_core::config::Config::default())
            },
        );
        Self(Arc::new(Services {
            clients: engine.clients().clone(),
            keys,
            deps,
            engine,
            platform,
            settings: Arc::new(settings),
        }))
    }

    #[must_use]
    pub fn with_platform(mut self, platform: Platform) -> Self {
        // The engine that serves tokens and introspection follows this platform's rules.
        platform.govern(&self.0.engine);
        Arc::make_mut(&mut self.0).platform = platform;
        self
    }

    /// The same state with its HTTP settings changed by `change`.
    #[must_use]
    pub fn with_settings(mut self, change: impl FnOnce(&mut HttpSettings)) -> Self {
        change(Arc::make_mut(&mut Arc::make_mut(&mut self.0).settings));
        self
    }

    pub fn issuer(&self) -> &str {
        &self.engine.settings().issuer
    }

    /// True when cookies must be `Secure`.
    pub fn secure(&self) -> bool {
        self.engine.settings().secure_cookies()
    }
}
