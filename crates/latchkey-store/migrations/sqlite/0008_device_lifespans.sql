-- Latchkey schema, version 8 (SQLite): a client's lifetimes of the tokens the device grant issues
-- it (Hydra's device_authorization_grant_*_lifespan), as JSON; '{}' is the server's defaults.
-- Keep in step with migrations/postgres/0008_device_lifespans.sql.
ALTER TABLE clients ADD COLUMN device_lifespan TEXT NOT NULL DEFAULT '{}';
