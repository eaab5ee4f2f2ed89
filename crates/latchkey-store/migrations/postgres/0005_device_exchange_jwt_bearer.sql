-- The device authorization grant (RFC 8628), token exchange (RFC 8693) and the JWT bearer grant
-- (RFC 7523).

-- A device code, keyed by the hash of its lk_dc_ token, and its user code, keyed by a hash of
-- the normalised code. state: pending, verified (a user entered the code), authorized (the
-- consent was given: data holds the authorization the tokens are minted from), denied, used.
-- polled_at and poll_interval hold the polling rate in the database, so slow_down holds across
-- replicas.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    poll_interval BIGINT NOT NULL,
    polled_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX device_codes_expires_idx ON device_codes (expires_at);

-- A visit of the device verification page: the user code it may be answered with is limited
-- (failures), and once answered, it holds the verifier that starts the login.
CREATE TABLE device_challenges (
    challenge_hash TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    address TEXT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    device_code_hash TEXT,
    verifier_hash TEXT UNIQUE,
    verifier_used_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX device_challenges_expires_idx ON device_challenges (expires_at);

-- Issuers trusted for the JWT bearer grant (RFC 7523 §2.1), as Hydra's trust API keeps them: an
-- assertion of issuer, about subject (or any subject when allow_any_subject), signed by the key
-- jwk (a public JWK with its kid), may get up to scope (space-separated) until expires_at.
-- The assertions' jti are kept in client_assertion_jtis, one statement per use.
CREATE TABLE trusted_jwt_issuers (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    allow_any_subject BIGINT NOT NULL,
    scope TEXT NOT NULL,
    key_id TEXT NOT NULL,
    jwk TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX trusted_jwt_issuers_key_idx ON trusted_jwt_issuers (issuer, subject, key_id);
