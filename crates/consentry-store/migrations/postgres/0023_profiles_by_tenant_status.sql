-- The console counts a tenant's profiles by status, each status up to a limit (a LIMITed subquery per
-- status): this index gives each of those counts its own range, as profiles_by_org_status does for an
-- organization, so a count reads at most the limit's entries however many profiles the tenant has. It
-- also serves listing one status of one tenant.
CREATE INDEX profiles_by_tenant_status ON profiles (tenant_id, status, created_at, id);
