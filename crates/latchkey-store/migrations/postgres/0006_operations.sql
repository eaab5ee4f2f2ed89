-- Operations (PostgreSQL): the revocation log. Every revocation appends one row in the
-- transaction that revokes; `id` is the log's cursor. Appends take a transaction-level advisory
-- lock before drawing the id, so ids are drawn in commit order and a reader never sees id n+1
-- before id n is committed or abandoned (see docs/storage.md). Keep in step with
-- migrations/sqlite/0006_operations.sql.

CREATE TABLE revocation_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    token_hash TEXT,
    family_id TEXT,
    grant_id TEXT,
    client_id TEXT,
    secret_id TEXT,
    subject TEXT,
    sid TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX revocation_log_at_idx ON revocation_log (at);
