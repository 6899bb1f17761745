-- National clouds: the Microsoft cloud a tenant lives in (a key of the cloud table: `global`, `usgov`,
-- `usgov-dod`, `china`), found from its OpenID metadata when it is connected; it never changes. Profiles
-- keep a copy (set when the profile is created), so a check names its cloud without reading the tenant.
-- Every tenant connected before national clouds were supported lives in the global cloud.
-- Migrations only move forward: never edit an applied file, add a new one.

ALTER TABLE tenants ADD COLUMN cloud TEXT NOT NULL DEFAULT 'global';
ALTER TABLE profiles ADD COLUMN cloud TEXT NOT NULL DEFAULT 'global';
