-- no-transaction
-- A realistic online migration of the largest table, as the migration lint requires it: a
-- nullable column without a default (no rewrite; a brief ACCESS EXCLUSIVE lock), and an index
-- built CONCURRENTLY after dropping any half-built one. Applied by bench/migration.sh.
ALTER TABLE access_tokens ADD COLUMN resource TEXT;
DROP INDEX CONCURRENTLY IF EXISTS access_tokens_subject_idx;
CREATE INDEX CONCURRENTLY access_tokens_subject_idx ON access_tokens (subject);
