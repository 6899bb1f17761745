-- Roles of organization accounts and personal access tokens for the JSON API. Migrations only move
-- forward: never edit an applied file, add a new one.
--
-- role: 'admin' (may change its organization's data) or 'viewer' (read only). Accounts that existed
-- before roles become admins; platform accounts (org_id NULL) are the platform operator and keep 'admin'.
-- Personal access tokens act for their account with its scope and role; only the hex SHA-256 of a token
-- is kept. They go with their account. Service API keys record when the token API last accepted them. Compared text uses COLLATE "C" (byte order, as in SQLite).

ALTER TABLE operator_accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';

CREATE TABLE personal_tokens (
    id            TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    account_id    TEXT    COLLATE "C" NOT NULL REFERENCES operator_accounts (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    token_hash    TEXT    COLLATE "C" NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    CONSTRAINT personal_tokens_hash_unique UNIQUE (token_hash)
);
CREATE INDEX personal_tokens_by_account ON personal_tokens (account_id);

ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
