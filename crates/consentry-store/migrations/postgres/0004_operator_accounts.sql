-- Operator accounts of the web console and their sessions. Migrations only move forward: never edit an
-- applied file, add a new one.
--
-- An account belongs to one organization (org_id) or, with org_id NULL, is a platform operator who sees
-- every organization; it goes with its organization. Passwords are kept only as argon2id PHC strings.
-- Sessions are keyed by the hex SHA-256 of their token (the token itself lives only in the browser's
-- cookie), so any replica can serve them and a database leak hands out no live session. Compared text uses
-- COLLATE "C" (byte order, as in SQLite).

CREATE TABLE operator_accounts (
    id             TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    username       TEXT    COLLATE "C" NOT NULL,  -- lower case
    org_id         TEXT    COLLATE "C" REFERENCES organizations (id) ON DELETE CASCADE,
    password_hash  TEXT    NOT NULL,            -- argon2id, PHC string
    created_at     BIGINT  NOT NULL,
    CONSTRAINT operator_accounts_username_unique UNIQUE (username)
);

CREATE TABLE console_sessions (
    token_hash    TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    account_id    TEXT    COLLATE "C" NOT NULL REFERENCES operator_accounts (id) ON DELETE CASCADE,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
CREATE INDEX console_sessions_by_account ON console_sessions (account_id);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen_at);
