//! The migration lint: reads every file under `migrations/` and refuses what would block traffic
//! on a large PostgreSQL table, or break in step with the other engine. It runs with
//! `cargo test -p latchkey-store` (and so in CI). The rules:
//!
//! - both directories carry the same version numbers, and the binary carries every file
//!   (`migrate.rs`'s lists);
//! - no star select (`SELECT` of `*`): every query names its columns;
//! - PostgreSQL: an index on a table the same file did not create is built `CONCURRENTLY`
//!   (which needs a `-- no-transaction` file), and is dropped `CONCURRENTLY IF EXISTS` just
//!   before, so that a retry after a lock timeout rebuilds an index left invalid half-way;
//! - no volatile default (`now()`, `random()`, `gen_random_uuid()`, `clock_timestamp()`,
//!   `CURRENT_TIMESTAMP`) on `ALTER TABLE … ADD COLUMN`: PostgreSQL rewrites the whole table
//!   under lock to fill it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One problem found, with the file it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub file: String,
    pub problem: String,
}

/// The statements of a migration: comments removed, split on `;`, whitespace collapsed,
/// upper-cased.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|l| l.find("--").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The word after `keyword` in `stmt` (e.g. the table after `ON`), without quotes or a
/// parenthesis.
fn word_after<'s>(stmt: &'s str, keyword: &str) -> Option<&'s str> {
    let at = stmt.find(keyword)? + keyword.len();
    stmt[at..]
        .split_whitespace()
        .next()
        .map(|w| w.split('(').next().unwrap_or(w).trim_matches('"'))
}

const VOLATILE: [&str; 5] = [
    "NOW()",
    "RANDOM()",
    "GEN_RANDOM_UUID()",
    "CLOCK_TIMESTAMP()",
    "CURRENT_TIMESTAMP",
];

/// Checks one migration file; `postgres` says which engine it is for.
pub(crate) fn check_file(name: &str, sql: &str, postgres: bool) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut problem = |p: String| {
        out.push(Violation {
            file: name.to_owned(),
            problem: p,
        });
    };
    let no_tx = sql.starts_with("-- no-transaction");
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    for stmt in statements(sql) {
        let compact = stmt.replace(' ', "");
        if compact.contains("SELECT*") {
            problem(format!("a star select: name the columns ({stmt})"));
        }
        if let Some(rest) = stmt.strip_prefix("CREATE TABLE ") {
            let table = rest.trim_start_matches("IF NOT EXISTS ");
            if let Some(t) = table.split([' ', '(']).next() {
                created.insert(t.trim_matches('"').to_owned());
            }
        }
        if stmt.starts_with("ALTER TABLE ")
            && stmt.contains(" ADD ")
            && let Some(v) = VOLATILE
                .iter()
                .find(|v| stmt.contains(&format!("DEFAULT {v}")) || compact.contains(*v))
        {
            problem(format!(
                "a volatile default ({v}) on ADD COLUMN rewrites the table under lock: add the column without it, then backfill in batches ({stmt})"
            ));
        }
        if postgres
            && stmt.starts_with("DROP INDEX CONCURRENTLY IF EXISTS ")
            && let Some(i) = word_after(&stmt, "IF EXISTS ")
        {
            dropped.insert(i.to_owned());
        }
        let is_index =
            stmt.starts_with("CREATE INDEX ") || stmt.starts_with("CREATE UNIQUE INDEX ");
        if postgres && is_index {
            let Some(table) = word_after(&stmt, " ON ") else {
                problem(format!("an index without a table? ({stmt})"));
                continue;
            };
            let table = table.trim_start_matches("ONLY ");
            if created.contains(table) {
                continue;
            }
            if !stmt.contains(" CONCURRENTLY ") {
                problem(format!(
                    "an index on the existing table {table} must be built CONCURRENTLY, in a `-- no-transaction` file ({stmt})"
                ));
                continue;
            }
            if !no_tx {
                problem(format!(
                    "CREATE INDEX CONCURRENTLY cannot run in a transaction: start the file with `-- no-transaction` ({stmt})"
                ));
            }
            let name = word_after(&stmt, " CONCURRENTLY ").map(|n| {
                if n == "IF" {
                    word_after(&stmt, " NOT EXISTS ").unwrap_or(n)
                } else {
                    n
                }
            });
            if !name.is_some_and(|n| dropped.contains(n)) {
                problem(format!(
                    "drop the index with `DROP INDEX CONCURRENTLY IF EXISTS` just before building it, so that a retry rebuilds one left invalid ({stmt})"
                ));
            }
        }
    }
    out
}

/// The versions of the files of a directory (their leading digits), with their names.
fn versions(dir: &Path) -> std::io::Result<BTreeMap<i64, String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !std::path::Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("sql"))
        {
            continue;
        }
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        let version = digits.parse().unwrap_or(-1);
        out.insert(version, name);
    }
    Ok(out)
}

/// Every violation under `root` (the `migrations` directory).
pub(crate) fn check_dir(root: &Path) -> std::io::Result<Vec<Violation>> {
    let mut out = Vec::new();
    let sqlite = versions(&root.join("sqlite"))?;
    let postgres = versions(&root.join("postgres"))?;
    let s: BTreeSet<_> = sqlite.keys().collect();
    let p: BTreeSet<_> = postgres.keys().collect();
    for v in s.symmetric_difference(&p) {
        out.push(Violation {
            file: format!("version {v}"),
            problem: "sqlite/ and postgres/ must carry the same version numbers".into(),
        });
    }
    for (engine, files) in [("sqlite", &sqlite), ("postgres", &postgres)] {
        for (version, name) in files {
            if *version < 0 {
                out.push(Violation {
                    file: format!("{engine}/{name}"),
                    problem: "a migration's name starts with its version number".into(),
                });
            }
            let sql = std::fs::read_to_string(root.join(engine).join(name))?;
            out.extend(check_file(
                &format!("{engine}/{name}"),
                &sql,
                engine == "postgres",
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_passes_the_lint() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let found = check_dir(&root).expect("read the migrations");
        assert!(found.is_empty(), "migration lint:\n{found:#?}");
    }

    #[test]
    fn the_binary_carries_every_migration_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for (engine, backend) in [
            ("sqlite", crate::Backend::Sqlite),
            ("postgres", crate::Backend::Postgres),
        ] {
            let on_disk: Vec<i64> = versions(&root.join(engine))
                .expect("read")
                .into_keys()
                .collect();
            let carried: Vec<i64> = crate::migrate::versions(backend);
            assert_eq!(on_disk, carried, "{engine}: add the file to migrate.rs");
        }
    }

    fn problems(sql: &str, postgres: bool) -> Vec<String> {
        check_file("t.sql", sql, postgres)
            .into_iter()
            .map(|v| v.problem)
            .collect()
    }

    #[test]
    fn an_index_on_an_existing_table_must_be_concurrent_and_retryable() {
        assert_eq!(problems("CREATE INDEX a_idx ON tokens (x);", true).len(), 1);
        assert!(problems("CREATE INDEX a_idx ON tokens (x);", false).is_empty());
        assert!(
            problems(
                "CREATE TABLE tokens (x TEXT);\nCREATE INDEX a_idx ON tokens (x);",
                true
            )
            .is_empty()
        );
        // Concurrently, but inside a transaction, and not dropped first.
        assert_eq!(
            problems("CREATE INDEX CONCURRENTLY a_idx ON tokens (x);", true).len(),
            2
        );
        assert!(
            problems(
                "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS a_idx;\n\
                 CREATE INDEX CONCURRENTLY a_idx ON tokens (x);",
                true
            )
            .is_empty()
        );
        assert_eq!(
            problems(
                "-- no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON tokens (x);",
                true
            )
            .len(),
            1
        );
    }

    #[test]
    fn select_star_and_volatile_defaults_are_refused() {
        // Built, so that no query text of the tree selects a star.
        let star = format!("INSERT INTO a SELECT {} FROM b;", '*');
        assert_eq!(problems(&star, false).len(), 1);
        assert_eq!(problems(&format!("select  {}  from b", '*'), true).len(), 1);
        let comment = format!("SELECT 1; -- SELECT {} in a comment", '*');
        assert!(problems(&comment, true).is_empty());
        for d in [
            "now()",
            "random()",
            "gen_random_uuid()",
            "clock_timestamp()",
        ] {
            assert_eq!(
                problems(
                    &format!("ALTER TABLE tokens ADD COLUMN c TEXT DEFAULT {d};"),
                    true
                )
                .len(),
                1,
                "{d}"
            );
        }
        assert!(
            problems(
                "ALTER TABLE tokens ADD COLUMN c BIGINT NOT NULL DEFAULT 0;",
                true
            )
            .is_empty()
        );
    }
}
