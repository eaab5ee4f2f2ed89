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

-- This database's identity, made by its first export (`latchkey export`): a snapshot names its
-- source, so that `latchkey sync` refuses a database that is not the snapshot's.
CREATE TABLE instance_identity (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- What `latchkey import` loaded: the source database and its revocation cursor at the snapshot.
CREATE TABLE import_source (
    source_id TEXT PRIMARY KEY,
    revocation_cursor BIGINT NOT NULL,
    imported_at BIGINT NOT NULL
);
