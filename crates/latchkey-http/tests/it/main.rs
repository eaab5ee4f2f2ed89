//! In-process HTTP tests with the real routers (`tower::ServiceExt::oneshot`), on SQLite and,
//! when `LATCHKEY_TEST_POSTGRES_URL` is set, PostgreSQL.

mod admin_clients;
mod adversarial;
mod agents;
mod bad_input;
mod browser;
mod cimd;
mod client_cache;
mod core_rules;
mod device;
mod engine;
mod exchange;
mod interop;
mod janitor;
mod jwt_bearer;
mod openapi;
mod ops;
mod platform;
mod rate_limits;
mod refresh;
mod revocations;
mod support;
mod transfer;
