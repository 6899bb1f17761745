-- The monitor's schedule, PostgreSQL dialect. Migrations only move forward: never edit an applied file, add a new one.
--
-- One row per profile (created by the monitor when it first sees the profile): when its next check is due, which
-- worker holds the lease on it and until when (two monitors never check the same profile at once; a lease that
-- runs out, e.g. after a crash, lets another worker take the profile), and the count of consecutive checks that
-- failed transiently with the last such error (transient failures never change a profile's status).

CREATE TABLE check_schedule (
    profile_id          TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES profiles (id) ON DELETE CASCADE,
    tenant_id           TEXT COLLATE "C" NOT NULL,
    next_check_at       BIGINT  NOT NULL,
    lease_owner         TEXT,
    lease_until         BIGINT,
    transient_failures  BIGINT  NOT NULL DEFAULT 0,
    last_error          TEXT,
    last_error_at       BIGINT
);

CREATE INDEX check_schedule_due ON check_schedule (next_check_at);

-- Organizations' webhooks (status-change notifications) and their delivery log. The signing secret is sealed
-- with the master key, bound to the webhook's ID, never plaintext.
CREATE TABLE webhooks (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id         TEXT COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url            TEXT    NOT NULL,
    sealed_secret  BYTEA   NOT NULL,
    created_at     BIGINT  NOT NULL
);

CREATE INDEX webhooks_org ON webhooks (org_id);

CREATE TABLE webhook_deliveries (
    seq          BIGSERIAL PRIMARY KEY,
    webhook_id   TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    profile_id   TEXT COLLATE "C" NOT NULL,
    event        TEXT    NOT NULL,
    reason_code  TEXT,
    status_code  BIGINT,
    attempts     BIGINT  NOT NULL,
    ok           BIGINT  NOT NULL,
    error        TEXT,
    at           BIGINT  NOT NULL,
    CHECK (ok IN (0, 1))
);

CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, seq);
CREATE INDEX webhook_deliveries_profile ON webhook_deliveries (profile_id, event, at);

-- Service API keys for the token API, scoped to one organization. Only the SHA-256 of a key is kept (keys are
-- 256 random bits, shown once at creation); revoked keys stay listed with their revocation time.
CREATE TABLE api_keys (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    org_id      TEXT COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX api_keys_org ON api_keys (org_id);
