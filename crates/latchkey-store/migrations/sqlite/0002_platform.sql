-- Latchkey schema, version 2 (SQLite): the platform. Expand-only: new tables, nothing changed on
-- the existing ones. Keep in step with migrations/postgres/0002_platform.sql.

-- The platform's side of a client made in the developer console: owning account, visibility,
-- publisher domain verification, required and optional scopes, restricted scope review.
CREATE TABLE apps (
    client_id TEXT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    app_type TEXT NOT NULL,
    required_scopes TEXT NOT NULL DEFAULT '',
    optional_scopes TEXT NOT NULL DEFAULT '',
    visibility TEXT NOT NULL DEFAULT 'private',
    domain TEXT,
    verification_token TEXT,
    domain_verified_at INTEGER,
    requested_restricted TEXT NOT NULL DEFAULT '[]',
    approved_restricted TEXT NOT NULL DEFAULT '[]',
    promoted_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX apps_account_idx ON apps (account_id);
-- A verified domain belongs to one app.
CREATE UNIQUE INDEX apps_verified_domain_idx ON apps (domain) WHERE domain_verified_at IS NOT NULL;

-- A user's session on the platform's own pages (connected apps, developer and admin consoles).
CREATE TABLE console_sessions (
    id TEXT PRIMARY KEY,
    cookie_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    authenticated_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

-- Failed logins per user and per address, shared by every replica: the brute-force backoff.
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
);
CREATE INDEX login_throttle_last_failure_idx ON login_throttle (last_failure_at);
