-- An organization's daily email digest: the addresses that opted in to it, and the last day (UTC,
-- YYYY-MM-DD) a digest was queued for, claimed with the messages in one transaction so that replicas
-- queue one digest per organization and day.
CREATE TABLE digest_recipients (
    org_id      TEXT COLLATE "C" NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    position    BIGINT  NOT NULL,
    address     TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (org_id, position)
);

CREATE TABLE digest_days (
    org_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    last_day    TEXT    NOT NULL
);
