//! The one place that reads randomness.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A cryptographically secure source of random bytes. Services take one as a parameter; tests
/// use a seeded one.
pub trait Entropy: Send + Sync + std::fmt::Debug {
    fn fill(&self, dest: &mut [u8]);
}

/// Convenience methods on every [`Entropy`].
pub trait EntropyExt: Entropy {
    fn array<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// 32 random bytes as unpadded base64url (43 characters, 256 bits).
    fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.array::<32>())
    }

    /// A random (version 4) UUID.
    fn uuid(&self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(self.array::<16>()).into_uuid()
    }

    /// A time-ordered (version 7) UUID for `millis` (Unix milliseconds, from
    /// [`Clock::now_millis`](crate::clock::Clock::now_millis)), with 74 random bits: ids made one
    /// after another sort together, so a database index of them grows at its end instead of at a
    /// random page per row. For the ids of rows written on hot paths (token families, flows,
    /// sessions, grants, audit entries); never for a value that must be unguessable.
    fn uuid_v7(&self, millis: i64) -> uuid::Uuid {
        let millis = u64::try_from(millis).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &self.array::<10>()).into_uuid()
    }
}

impl<T: Entropy + ?Sized> EntropyExt for T {}

/// The operating system's CSPRNG.
#[derive(Debug, Default)]
pub struct SystemEntropy(aws_lc_rs::rand::SystemRandom);

impl SystemEntropy {
    pub fn new() -> Self {
        Self(aws_lc_rs::rand::SystemRandom::new())
    }
}

impl Entropy for SystemEntropy {
    fn fill(&self, dest: &mut [u8]) {
        use aws_lc_rs::rand::SecureRandom as _;
        // The system generator does not fail once the process has started; if it ever did,
        // continuing with predictable bytes would be worse than stopping.
        self.0
            .fill(dest)
            .expect("the system random number generator failed");
    }
}

/// A deterministic generator for tests (ChaCha20 from a seed).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
pub struct SeededEntropy(std::sync::Mutex<rand_chacha::ChaCha20Rng>);

#[cfg(any(test, feature = "test-util"))]
impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        use rand_core::SeedableRng as _;
        Self(std::sync::Mutex::new(
            rand_chacha::ChaCha20Rng::seed_from_u64(seed),
        ))
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Entropy for SeededEntropy {
    fn fill(&self, dest: &mut [u8]) {
        use rand_core::RngCore as _;
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fill_bytes(dest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_system_is_not() {
        assert_eq!(SeededEntropy::new(7).token(), SeededEntropy::new(7).token());
        let s = SystemEntropy::new();
        assert_ne!(s.token(), s.token());
        assert_eq!(s.token().len(), 43);
        assert_eq!(s.uuid().get_version_num(), 4);
        let (a, b) = (s.uuid_v7(1_700_000_000), s.uuid_v7(1_700_000_001));
        assert_eq!(a.get_version_num(), 7);
        assert_ne!(a, s.uuid_v7(1_700_000_000));
        assert!(a.to_string() < b.to_string(), "ordered by time as text too");
    }
}
