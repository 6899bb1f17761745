-- Consent campaigns and email.
--
-- A campaign asks the administrators of an organization's tenants to consent again: a rollout's
-- members that lack its permissions, or every invalid profile. Each tenant gets one link (stored as
-- the SHA-256 of its token for lookup, and sealed so that reminders carry the same link); each
-- profile is a member. What happened to a member is read from the profile's history since the
-- campaign started, so nothing here can disagree with it.
--
-- Email: tenants' administrator contacts, and the outbox every message waits in until an SMTP
-- server accepts it (content sealed: an invitation carries a link).
-- Migrations only move forward: never edit an applied file, add a new one.

CREATE TABLE campaigns (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- 'rollout' (rollout_version says which) or 'invalid'
    scope               TEXT    NOT NULL,
    rollout_version     BIGINT,
    -- one tenant only (the console's "Re-authorize all invalid profiles of this tenant")
    only_tenant         TEXT,
    started_by          TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    -- hours between reminders; 0: none
    remind_every_hours  BIGINT  NOT NULL,
    cancelled_at        BIGINT
);
CREATE INDEX campaigns_by_org ON campaigns (org_id, created_at);

CREATE TABLE campaign_tenants (
    campaign_id      TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash       TEXT NOT NULL UNIQUE,
    sealed_token     BLOB   NOT NULL,
    expires_at       BIGINT  NOT NULL,
    opened_at        BIGINT,
    -- the last invitation or reminder queued, and how many
    last_invited_at  BIGINT,
    invitations      BIGINT  NOT NULL DEFAULT 0,
    -- the current pass through the link's profiles started (a profile attempted before it is tried again)
    pass_started_at  BIGINT,
    PRIMARY KEY (campaign_id, tenant_id)
);
CREATE INDEX campaign_tenants_by_tenant ON campaign_tenants (tenant_id);

CREATE TABLE campaign_members (
    campaign_id   TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    profile_id    TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL,
    -- when the current pass last sent the administrator to Microsoft for it
    attempted_at  BIGINT,
    -- why the pass could not send the administrator to Microsoft for it (then it was skipped)
    last_error    TEXT,
    PRIMARY KEY (campaign_id, profile_id)
);
CREATE INDEX campaign_members_by_tenant ON campaign_members (campaign_id, tenant_id);
CREATE INDEX campaign_members_by_profile ON campaign_members (profile_id);

CREATE TABLE tenant_contacts (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position    BIGINT  NOT NULL,
    address     TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, position)
);

CREATE TABLE email_outbox (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tenant_id        TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL,
    recipient        TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    sealed_content   BLOB   NOT NULL,
    topic            TEXT,
    -- 'queued', 'sent' or 'failed'
    state            TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    leased_until     BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX email_outbox_due ON email_outbox (state, next_attempt_at);
CREATE INDEX email_outbox_by_tenant ON email_outbox (tenant_id, created_at);
CREATE INDEX email_outbox_by_org ON email_outbox (org_id, created_at);
CREATE INDEX email_outbox_by_topic ON email_outbox (topic, created_at);
