-- Latchkey schema, version 4 (PostgreSQL): clients that vouch for nothing. Keep in step with
-- migrations/sqlite/0004_external_clients.sql. A column with a constant default is added
-- without rewriting the table.

-- Where a client came from: 'registered' (admin API, developer console), 'dynamic' (RFC 7591
-- registration) or 'metadata_document' (its client_id is the URL of its metadata document).
ALTER TABLE clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'registered';

-- The registration access token of a dynamically registered client (RFC 7592), by hash.
CREATE TABLE client_registrations (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
