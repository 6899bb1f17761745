-- Permission rollouts: the profiles a catalog version's new permissions concern, enrolled once (an
-- authorized profile of an app type that gained permissions at that version, consented at an older
-- version), and when each was seen holding all of them. A member keeps its row after it re-consents, so
-- a rollout still counts it (done) and the completion chart is drawn from `done_at`.
-- Migrations only move forward: never edit an applied file, add a new one.

CREATE TABLE rollout_members (
    catalog_version  BIGINT  NOT NULL,
    profile_id       TEXT    NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    added_at         BIGINT  NOT NULL,
    -- when the profile was first seen holding every permission of the rollout (NULL: not yet)
    done_at          BIGINT,
    PRIMARY KEY (catalog_version, profile_id)
);
CREATE INDEX rollout_members_by_profile ON rollout_members (profile_id);
