-- Tokens without a grant (client credentials) are never looked up by grant: leave them out of
-- the grant indexes, so each such token is one B-tree insert fewer. `grant_id = ?` implies
-- `grant_id IS NOT NULL`, so SQLite uses the partial index for every lookup by grant.
DROP INDEX access_tokens_grant_idx;
CREATE INDEX access_tokens_grant_idx ON access_tokens (grant_id) WHERE grant_id IS NOT NULL;
