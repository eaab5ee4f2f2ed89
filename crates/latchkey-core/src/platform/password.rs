//! Passwords: Argon2id (OWASP parameters), hashed and verified off the async runtime through a
//! [`BlockingExecutor`] that the HTTP layer or the binary provides.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;

use crate::entropy::{Entropy, EntropyExt as _};
use crate::secret::SecretString;

/// A job for a thread that may block.
pub type BlockingJob = Box<dyn FnOnce() + Send + 'static>;

/// Runs CPU-heavy work away from the async runtime's worker threads. The binary implements it
/// with `tokio::task::spawn_blocking`; this crate knows no runtime.
#[async_trait]
pub trait BlockingExecutor: Send + Sync + std::fmt::Debug {
    /// Runs `job` and resolves once it has run (or panicked).
    async fn run(&self, job: BlockingJob);
}

/// Runs jobs on the calling thread: for tests and tools that have no runtime to protect.
#[derive(Debug, Default, Clone, Copy)]
pub struct InlineExecutor;

#[async_trait]
impl BlockingExecutor for InlineExecutor {
    async fn run(&self, job: BlockingJob) {
        job();
    }
}

/// Runs `f` on `executor` and returns its result; `None` when the job did not complete.
pub async fn run_blocking<T: Send + 'static>(
    executor: &dyn BlockingExecutor,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    executor
        .run(Box::new(move || {
            let v = f();
            *out.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v);
        }))
        .await;
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Longest password accepted (Argon2 takes any length; this bounds the work per attempt).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Shortest password a new user may choose.
pub const MIN_PASSWORD_LEN: usize = 10;

fn argon2() -> Argon2<'static> {
    // OWASP: Argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (PHC string) with a salt from `entropy`. Blocks: call through
/// [`run_blocking`].
pub fn hash_password(password: &SecretString, entropy: &dyn Entropy) -> Result<String, String> {
    let salt = SaltString::encode_b64(&entropy.array::<16>()).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a password against a PHC string. Blocks.
pub fn verify_password(password: &SecretString, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    argon2()
        .verify_password(password.expose().as_bytes(), &hash)
        .is_ok()
}

/// A hash of nothing anyone knows, verified when the user is unknown so that an unknown email
/// takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"latchkey-dummy-salt").expect("valid salt");
        argon2()
            .hash_password(b"no user has this password", &salt)
            .map(|h| h.to_string())
            .expect("hashing a constant works")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let pw = SecretString::new("correct horse battery");
        let entropy = SeededEntropy::new(1);
        let h = hash_password(&pw, &entropy).expect("hash");
        assert!(h.starts_with("$argon2id$"));
        let ok = run_blocking(&InlineExecutor, move || verify_password(&pw, &h)).await;
        assert_eq!(ok, Some(true));
        assert!(!verify_password(&SecretString::new("wrong"), dummy_hash()));
        assert!(!verify_password(&SecretString::new("x"), "not a hash"));
    }
}
