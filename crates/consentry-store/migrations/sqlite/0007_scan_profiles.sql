-- Scan profiles of Cloud Backup for Microsoft 365 (what protects a tenant's data, Planner among it).
-- Migrations only move forward: never edit an applied file, add a new one.
--
-- A scan profile authenticates with an app profile (auth_method 'app_profile', app_profile_id set) or, as
-- configured in the classic UI, with a service account plus an additional delegated app profile
-- (auth_method 'classic', service_account_upn and delegated_profile_id set). No password of the service
-- account is stored: only its UPN. The profile references are not foreign keys: the domain refuses to
-- delete an app profile a scan profile uses, and readiness reports a reference that no longer resolves.
-- Scan profiles go with their tenant. Granted permissions need no new column: profiles.granted_permissions
-- already records what the last consent or check read from Graph.

CREATE TABLE scan_profiles (
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
    CHECK (auth_method IN ('app_profile', 'classic')),
    CHECK ((auth_method = 'app_profile') = (app_profile_id IS NOT NULL)),
    CHECK ((auth_method = 'classic') = (service_account_upn IS NOT NULL AND delegated_profile_id IS NOT NULL)),
    CHECK (planner_backup_enabled IN (0, 1)),
    CONSTRAINT scan_profiles_name_unique UNIQUE (tenant_id, name_folded),
    CONSTRAINT scan_profiles_tenant_org_fk FOREIGN KEY (tenant_id, org_id)
        REFERENCES tenants (id, org_id) ON DELETE CASCADE
);
CREATE INDEX scan_profiles_by_app_profile ON scan_profiles (app_profile_id);
CREATE INDEX scan_profiles_by_delegated_profile ON scan_profiles (delegated_profile_id);
