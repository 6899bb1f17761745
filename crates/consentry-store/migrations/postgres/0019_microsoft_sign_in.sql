-- "Sign in with Microsoft" for the console. Migrations only move forward: never edit an applied file,
-- add a new one.
--
-- microsoft_sign_in_attempts: a sign-in started in a browser and not finished, keyed by the hex SHA-256
-- of its OAuth state (the state itself is never stored); the PKCE verifier, the nonce and the hash of the
-- browser's binding cookie are sealed (bound to the state hash). Single use: the callback deletes the row
-- it reads. Expires after 10 minutes.
--
-- operator_accounts.entra_tenant_id / entra_object_id: the Microsoft identity an account belongs to (NULL
-- for local accounts); one account per identity. Such an account has no password (empty hash).
--
-- organizations.microsoft_members: what a member of the organization's tenants without an admin role gets
-- when signing in with Microsoft: `viewer` or `refused`.

CREATE TABLE microsoft_sign_in_attempts (
    state_hash      TEXT     COLLATE "C" NOT NULL PRIMARY KEY,
    sealed_secrets  BYTEA    NOT NULL,
    next_path       TEXT     NOT NULL,
    created_at      BIGINT   NOT NULL,
    expires_at      BIGINT   NOT NULL
);
CREATE INDEX microsoft_sign_in_attempts_by_expiry ON microsoft_sign_in_attempts (expires_at);

ALTER TABLE operator_accounts ADD COLUMN entra_tenant_id TEXT COLLATE "C";
ALTER TABLE operator_accounts ADD COLUMN entra_object_id TEXT COLLATE "C";
CREATE UNIQUE INDEX operator_accounts_by_entra_identity
    ON operator_accounts (entra_tenant_id, entra_object_id);

ALTER TABLE organizations ADD COLUMN microsoft_members TEXT NOT NULL DEFAULT 'viewer';
