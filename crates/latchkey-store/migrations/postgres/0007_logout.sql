-- Logout: the logout challenge, the apps that took part in each login session, the clients'
-- front- and back-channel logout URIs, and the durable outbox of back-channel logout tokens.

ALTER TABLE clients ADD COLUMN logout_channels TEXT NOT NULL DEFAULT '{}';

-- When a remembered login was last used, for "Your sessions".
ALTER TABLE login_sessions ADD COLUMN last_active_at BIGINT;

-- Which apps a login session signed in to: the apps a logout of that session signs out.
CREATE TABLE login_session_clients (
    session_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

-- One row per logout request (RP- or OP-initiated), through its challenge and verifier.
CREATE TABLE logout_requests (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    challenge TEXT NOT NULL UNIQUE,
    verifier TEXT UNIQUE,
    csrf TEXT NOT NULL,
    subject TEXT NOT NULL,
    sid TEXT NOT NULL,
    client_id TEXT,
    data TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX logout_requests_expires_idx ON logout_requests (expires_at);

-- Back-channel logout tokens to deliver: written with the logout that ends the session, sent
-- and retried by a background task; the outcome stays recorded.
CREATE TABLE backchannel_logouts (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    subject TEXT NOT NULL,
    sid TEXT NOT NULL,
    include_sid BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    delivered_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX backchannel_logouts_due_idx ON backchannel_logouts (next_attempt_at);
