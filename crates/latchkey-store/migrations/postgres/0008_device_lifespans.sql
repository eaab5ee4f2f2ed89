-- Latchkey schema, version 8 (PostgreSQL): a client's lifetimes of the tokens the device grant issues
-- it (Hydra's device_authorization_grant_*_lifespan), as JSON; '{}' is the server's defaults.
-- Keep in step with migrations/sqlite/0008_device_lifespans.sql. A constant default adds the column without rewriting the table.
ALTER TABLE clients ADD COLUMN device_lifespan TEXT NOT NULL DEFAULT '{}';
