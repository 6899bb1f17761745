-- The classic authentication method of a scan profile in its second form, SQLite dialect. Migrations only move
-- forward: never edit an applied file, add a new one.
--
-- The classic UI authenticated a scan profile with a service account profile OR an app profile, either
-- with an additional delegated app profile. Migration 0007 recorded the first form only ('classic':
-- service_account_upn and delegated_profile_id). This adds the second, 'classic_app_profile':
-- app_profile_id and delegated_profile_id set, service_account_upn not. Saving either converts it to
-- 'app_profile'. SQLite cannot change a CHECK constraint in place: the table is rebuilt with its rows.

CREATE TABLE scan_profiles_0009 (
    id                      TEXT    NOT NULL PRIMARY KEY,
    org_id                  TEXT    NOT NULL,
    tenant_id               TEXT    NOT NULL,
    name                    TEXT    NOT NULL,
    name_folded             TEXT    NOT NULL,   -- lower-cased name: unique per tenant, case-insensitive
    modules                 TEXT    NOT NULL,   -- JSON array of catalog module keys
    auth_method             TEXT    NOT NULL,
    app_profile_id          TEXT,
    service_account_upn     TEXT,
    delegated_profile_id    TEXT,
    planner_backup_enabled  BIGINT  NOT NULL,   -- 0/1
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL,
    CONSTRAINT scan_profiles_auth_method CHECK (auth_method IN ('app_profile', 'classic', 'classic_app_profile')),
    CONSTRAINT scan_profiles_app_profile_set
        CHECK ((auth_method IN ('app_profile', 'classic_app_profile')) = (app_profile_id IS NOT NULL)),
    CONSTRAINT scan_profiles_service_account_set
        CHECK ((auth_method = 'classic') = (service_account_upn IS NOT NULL)),
    CONSTRAINT scan_profiles_delegated_profile_set
        CHECK ((auth_method IN ('classic', 'classic_app_profile')) = (delegated_profile_id IS NOT NULL)),
    CHECK (planner_backup_enabled IN (0, 1)),
    CONSTRAINT scan_profiles_name_unique UNIQUE (tenant_id, name_folded),
    CONSTRAINT scan_profiles_tenant_org_fk FOREIGN KEY (tenant_id, org_id)
        REFERENCES tenants (id, org_id) ON DELETE CASCADE
);
INSERT INTO scan_profiles_0009 (id, org_id, tenant_id, name, name_folded, modules, auth_method, app_profile_id,
    service_account_upn, delegated_profile_id, planner_backup_enabled, created_at, updated_at)
SELECT id, org_id, tenant_id, name, name_folded, modules, auth_method, app_profile_id,
    service_account_upn, delegated_profile_id, planner_backup_enabled, created_at, updated_at
FROM scan_profiles;
DROP TABLE scan_profiles;
ALTER TABLE scan_profiles_0009 RENAME TO scan_profiles;
CREATE INDEX scan_profiles_by_app_profile ON scan_profiles (app_profile_id);
CREATE INDEX scan_profiles_by_delegated_profile ON scan_profiles (delegated_profile_id);
