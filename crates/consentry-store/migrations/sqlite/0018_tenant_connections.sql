-- Connecting a tenant by consent (issue #19). A tenant proved to be its organization's is verified:
-- `verified_at` and how (`consent`: an administrator of the tenant signed in and consented to Consentry's
-- app; `reauthorization`: a re-authorization of one of its profiles completed). A tenant connected by typing
-- its ID stays unverified (NULL) until then. Tenants that already hold an authorized app profile were
-- proved by that consent and are verified by this migration.
--
-- `pending_connections`: a connection waiting for Microsoft's answer, so that any replica can finish it.
-- Keyed by the hex SHA-256 of the OAuth state (the state itself is never stored), taken (deleted) exactly
-- once; its secrets (PKCE verifier, nonce, browser binding) are one blob sealed with the master key and
-- bound to the state hash. Expired rows are removed when a new one is put.
-- Migrations only move forward: never edit an applied file, add a new one.

ALTER TABLE tenants ADD COLUMN verified_at BIGINT;
ALTER TABLE tenants ADD COLUMN verified_by TEXT;

UPDATE tenants SET verified_at = created_at, verified_by = 'reauthorization'
WHERE EXISTS (SELECT 1 FROM profiles p WHERE p.tenant_id = tenants.id AND p.authorized_at IS NOT NULL);

CREATE TABLE pending_connections (
    state_hash      TEXT   NOT NULL PRIMARY KEY,
    org_id          TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    started_by      TEXT    NOT NULL,   -- JSON (Actor)
    step            TEXT    NOT NULL,   -- sign_in | admin_consent
    tenant_id       TEXT,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    sealed_secrets  BLOB   NOT NULL
);
CREATE INDEX pending_connections_by_expiry ON pending_connections (expires_at);

-- An invitation of an organization's first admin (`consentry orgs invite`): a single-use link whose random
-- 256-bit token is never stored, only its hex SHA-256. Used once (`used_at`), it expires after 72 hours.
CREATE TABLE invitations (
    token_hash   TEXT  NOT NULL PRIMARY KEY,
    org_id       TEXT  NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email        TEXT,
    created_by   TEXT    NOT NULL,   -- JSON (Actor)
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    used_at      BIGINT,
    used_by      TEXT                -- the account's user name
);

-- The services an organization subscribes to (catalog service keys, JSON array): connecting a tenant offers
-- their app types first.
ALTER TABLE organizations ADD COLUMN services TEXT NOT NULL DEFAULT '[]';
