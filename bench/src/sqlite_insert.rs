//! The SQLite limit: single-row inserts, one transaction each, in a tight loop on one connection
//! (SQLite has one writer), with the settings a tuned server would use (WAL,
//! `synchronous=NORMAL`). The row is shaped like an access token row.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Inserts for `duration`; returns rows per second.
pub fn run(path: &Path, duration: Duration) -> anyhow::Result<(f64, u64)> {
    let conn =
        rusqlite::Connection::open(path).with_context(|| format!("open {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS bench_insert (
             token_hash BLOB PRIMARY KEY,
             client_id TEXT NOT NULL,
             scope TEXT NOT NULL,
             issued_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL
         )",
    )?;
    let mut insert = conn.prepare(
        "INSERT INTO bench_insert (token_hash, client_id, scope, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let started = Instant::now();
    let mut rows: u64 = 0;
    while started.elapsed() < duration {
        // A distinct 32-byte key per row, like the hash of a token.
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&rows.to_le_bytes());
        key[8..16].copy_from_slice(&rows.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        insert.execute(rusqlite::params![
            &key[..],
            "bench-client",
            "openid offline_access",
            1_700_000_000_i64,
            1_700_003_600_i64
        ])?;
        rows += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((rows as f64 / elapsed, rows))
}

#[cfg(test)]
mod tests {
    #[test]
    fn inserts_rows() {
        let dir = std::env::temp_dir().join(format!("latchkey-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let (rate, rows) =
            super::run(&dir.join("x.db"), std::time::Duration::from_millis(50)).expect("inserts");
        std::fs::remove_dir_all(&dir).expect("remove scratch dir");
        assert!(rows > 0 && rate > 0.0);
    }
}
