//! Wire protocol of Latchkey: the request and response types of the public OAuth 2.1 / OpenID
//! Connect endpoints and of the Hydra-compatible admin API, the RFC error vocabulary, and the
//! route constants shared by the router, the discovery document, templates and tests.
//!
//! This crate does no I/O. It is shared with clients, the benchmark and the resource-server guard.

pub mod client;
pub mod device;
pub mod discovery;
pub mod error;
pub mod flow;
pub mod jwk;
pub mod platform;
pub mod routes;
pub mod scope;
pub mod secret;
pub mod token;
pub mod trust;

pub use error::{ErrorCode, OAuthErrorBody};
pub use scope::{Scope, ScopeError};
pub use secret::Secret;
