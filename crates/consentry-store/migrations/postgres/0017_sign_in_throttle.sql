-- The console's sign-in throttle, shared by every replica (it was per process before): failed sign-ins per
-- key (`account:<name>`, `client:<address>`, `device:<hex SHA-256 of a device cookie>`), each key locked
-- out for a doubling window after five failures; and the browsers known to have signed in to an account
-- (their device cookie's SHA-256, never the cookie), which a stranger's failures cannot lock out.
-- Migrations only move forward: never edit an applied file, add a new one.

CREATE TABLE sign_in_throttle (
    throttle_key   TEXT COLLATE "C"   NOT NULL PRIMARY KEY,
    failures       BIGINT  NOT NULL,
    last_failure   BIGINT  NOT NULL,
    locked_until   BIGINT
);
CREATE INDEX sign_in_throttle_by_last_failure ON sign_in_throttle (last_failure);

CREATE TABLE sign_in_devices (
    token_hash     TEXT COLLATE "C"   NOT NULL,
    username       TEXT COLLATE "C"   NOT NULL,
    last_used_at   BIGINT  NOT NULL,
    PRIMARY KEY (token_hash, username)
);
CREATE INDEX sign_in_devices_by_last_used ON sign_in_devices (last_used_at);
