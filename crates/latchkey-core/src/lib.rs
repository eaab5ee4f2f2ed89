//! The domain model and protocol services of Latchkey.
//!
//! Services take their storage (the repository traits of [`store`]), their [`clock::Clock`] and
//! their [`entropy::Entropy`] as parameters, so that every rule — expiry, single use, rotation —
//! is tested by moving a mock clock rather than by sleeping. This crate knows neither axum nor
//! sqlx nor tokio.

pub mod audit;
pub mod client;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod deps;
pub mod discovery;
pub mod entropy;
pub mod janitor;
pub mod keys;
pub mod oauth;
pub mod platform;
pub mod revocations;
pub mod secret;
pub mod store;
pub mod throttle;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
