-- The monitor's schedule, SQLite dialect. Migrations only move forward: never edit an applied file, add a new one.
--
-- One row per profile (created by the monitor when it first sees the profile): when its next check is due, which
-- worker holds the lease on it and until when (two monitors never check the same profile at once; a lease that
-- runs out, e.g. after a crash, lets another worker take the profile), and the count of consecutive checks that
-- failed transiently with the last such error (transient failures never change a profile's status).

CREATE TABLE check_schedule (
    profile_id          TEXT    NOT NULL PRIMARY KEY REFERENCES profiles (id) ON DELETE CASCADE,
    tenant_id           TEXT    NOT NULL,
    next_check_at       BIGINT  NOT NULL,
    lease_owner         TEXT,
    lease_until         BIGINT,
    transient_failures  BIGINT  NOT NULL DEFAULT 0,
    last_error          TEXT,
    last_error_at       BIGINT
);

CREATE INDEX check_schedule_due ON check_schedule (next_check_at);
