-- Consentry schema, PostgreSQL dialect. Migrations only move forward: never edit an applied file, add a new one.
--
-- The same tables, constraints and indexes as migrations/sqlite/0001_initial.sql, with the same conventions so
-- that one set of queries runs on both through sqlx's Any driver: identifiers (GUIDs) as canonical lower-case
-- text; times as BIGINT Unix nanoseconds (UTC); structured values (modules, reasons, permissions, actors) as
-- JSON text; flags as 0/1 integers; secrets only as sealed bytes.
--
-- Text that is compared or ordered (IDs, folded names, domains) uses COLLATE "C": byte order, as in SQLite,
-- so keyset pagination and listings order the same on both and do not depend on the server's locale.

CREATE TABLE organizations (
    id           TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    name         TEXT              NOT NULL,
    -- lower-cased name: uniqueness is case-insensitive
    name_folded  TEXT COLLATE "C"  NOT NULL,
    modules      TEXT              NOT NULL,            -- JSON array of module keys
    created_at   BIGINT            NOT NULL,
    CONSTRAINT organizations_name_unique UNIQUE (name_folded)
);

CREATE TABLE tenants (
    id              TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    org_id          TEXT COLLATE "C"  NOT NULL REFERENCES organizations (id),
    primary_domain  TEXT COLLATE "C"  NOT NULL,
    display_name    TEXT              NOT NULL,
    created_at      BIGINT            NOT NULL,
    CONSTRAINT tenants_domain_unique UNIQUE (primary_domain),
    -- lets profiles reference (tenant, organization) together, so a profile's org is its tenant's org
    CONSTRAINT tenants_id_org_unique UNIQUE (id, org_id)
);
CREATE INDEX tenants_by_org ON tenants (org_id, primary_domain);

CREATE TABLE profiles (
    id                         TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    org_id                     TEXT COLLATE "C"  NOT NULL REFERENCES organizations (id),
    tenant_id                  TEXT COLLATE "C"  NOT NULL REFERENCES tenants (id),
    app_type                   TEXT COLLATE "C"  NOT NULL,
    service                    TEXT COLLATE "C"  NOT NULL,
    application_id             TEXT,
    consent_method             TEXT,
    consent_object_id          TEXT,
    consent_upn                TEXT,
    granted_permissions        TEXT     NOT NULL,   -- JSON array
    cert_thumbprint            TEXT,
    cert_subject               TEXT,
    cert_not_after             BIGINT,
    functions                  TEXT     NOT NULL,   -- JSON array
    original_sign_in_ip        TEXT,
    status                     TEXT COLLATE "C"  NOT NULL,
    reason                     TEXT,               -- JSON (StatusReason)
    reason_code                TEXT COLLATE "C",   -- the reason's stable code, for filtering
    last_checked_at            BIGINT,
    consented_catalog_version  BIGINT,
    authorized_at              BIGINT,
    created_at                 BIGINT   NOT NULL,
    updated_at                 BIGINT   NOT NULL,
    CHECK ((consent_object_id IS NULL) = (consent_upn IS NULL)),
    CHECK ((cert_thumbprint IS NULL) = (cert_not_after IS NULL)),
    CHECK ((reason IS NULL) = (reason_code IS NULL)),
    CONSTRAINT profiles_tenant_org_fk FOREIGN KEY (tenant_id, org_id) REFERENCES tenants (id, org_id)
);
-- Keyset pagination orders by (created_at, id); each filter has an index ending in that order so that a
-- page is an index range scan even at 100,000 profiles.
CREATE INDEX profiles_by_created  ON profiles (created_at, id);
CREATE INDEX profiles_by_org      ON profiles (org_id, created_at, id);
CREATE INDEX profiles_by_tenant   ON profiles (tenant_id, created_at, id);
CREATE INDEX profiles_by_status   ON profiles (status, created_at, id);
CREATE INDEX profiles_by_service  ON profiles (service, created_at, id);
CREATE INDEX profiles_by_app_type ON profiles (app_type, created_at, id);
CREATE INDEX profiles_by_org_status ON profiles (org_id, status, created_at, id);
CREATE INDEX profiles_by_reason   ON profiles (reason_code);

-- Append-only: rows are added, and removed only with their profile.
CREATE TABLE profile_history (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id   TEXT COLLATE "C"  NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    at           BIGINT   NOT NULL,
    actor        TEXT     NOT NULL,   -- JSON (Actor)
    kind         TEXT     NOT NULL,
    from_status  TEXT,
    to_status    TEXT,
    reason       TEXT,                -- JSON (StatusReason)
    reason_code  TEXT,
    detail       TEXT
);
CREATE INDEX profile_history_by_profile ON profile_history (profile_id, seq);

CREATE FUNCTION profile_history_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'profile_history is append-only';
END;
$$;

CREATE TRIGGER profile_history_append_only
BEFORE UPDATE ON profile_history
FOR EACH ROW EXECUTE FUNCTION profile_history_append_only();

-- Sealed secrets (AES-256-GCM, bound to profile_id + kind). Never plaintext.
CREATE TABLE secrets (
    profile_id  TEXT COLLATE "C"  NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    kind        TEXT COLLATE "C"  NOT NULL,
    sealed      BYTEA    NOT NULL,
    updated_at  BIGINT   NOT NULL,
    PRIMARY KEY (profile_id, kind)
);
