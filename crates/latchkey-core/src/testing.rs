//! Helpers for tests in this crate and others (feature `test-util`).

pub use crate::clock::MockClock;
pub use crate::entropy::SeededEntropy;

/// A system secret for tests.
pub const TEST_SECRET: &str = "test-system-secret-test-system-secret-0123";
