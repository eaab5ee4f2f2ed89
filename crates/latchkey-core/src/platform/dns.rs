//! Domain verification by DNS TXT record. The lookup is I/O: the HTTP layer provides the
//! resolver; this module says what record proves what.

use async_trait::async_trait;

/// Looks up TXT records.
#[async_trait]
pub trait TxtResolver: Send + Sync + std::fmt::Debug {
    /// The TXT strings published at `name` (each record's strings joined); empty when none.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String>;
}

/// The prefix of the verification record's value.
pub const TXT_PREFIX: &str = "latchkey-app-verification=";

/// The value the TXT record must hold.
pub fn expected_value(token: &str) -> String {
    format!("{TXT_PREFIX}{token}")
}

/// A resolver that finds nothing: for tools that never verify.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDns;

#[async_trait]
impl TxtResolver for NoDns {
    async fn txt(&self, _name: &str) -> Result<Vec<String>, String> {
        Err("DNS lookups are not available here".into())
    }
}
