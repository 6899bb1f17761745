-- Pending re-authorizations, SQLite dialect. Migrations only move forward: never edit an applied file, add a new one.
--
-- A re-authorization waits here, server-side, for the administrator to come back from Microsoft, so that any
-- replica can finish it. The row is keyed by the hex SHA-256 of the OAuth state (the state itself is never
-- stored), is taken (deleted) exactly once, and goes with its profile. At most one per profile: starting again
-- replaces it. Its secrets (PKCE verifier, a custom app's certificate and password) are one blob sealed with the
-- master key and bound to the state hash, never plaintext.

CREATE TABLE pending_authorizations (
    state_hash       TEXT     NOT NULL PRIMARY KEY,
    profile_id       TEXT     NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    started_by       TEXT     NOT NULL,   -- JSON (Actor)
    method           TEXT     NOT NULL,   -- consent method: admin | user
    leg              TEXT     NOT NULL,   -- admin_consent | sign_in
    sign_in_follows  BIGINT   NOT NULL,   -- 0/1
    custom_app_id    TEXT,
    functions        TEXT     NOT NULL,   -- JSON array
    nonce            TEXT     NOT NULL,
    previous_status  TEXT     NOT NULL,
    previous_reason  TEXT,                -- JSON (StatusReason)
    created_at       BIGINT   NOT NULL,
    expires_at       BIGINT   NOT NULL,
    sealed_secrets   BLOB     NOT NULL,
    CHECK (sign_in_follows IN (0, 1)),
    CONSTRAINT pending_authorizations_one_per_profile UNIQUE (profile_id)
);
