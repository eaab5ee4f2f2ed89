//! In-process HTTP tests with the real routers (`tower::ServiceExt::oneshot`), on SQLite and,
//! when `LATCHKEY_TEST_POSTGRES_URL` is set, PostgreSQL.

mod admin_clients;
mod browser;
mod engine;
mod ops;
mod platform;
mod support;
