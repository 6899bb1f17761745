-- The classic authentication method of a scan profile in its second form, PostgreSQL dialect. Migrations
-- only move forward: never edit an applied file, add a new one.
--
-- The same change as migrations/sqlite/0011_classic_app_profile_scan_auth.sql. The classic UI
-- authenticated a scan profile with a service account profile OR an app profile, either with an
-- additional delegated app profile. Migration 0007 recorded the first form only ('classic':
-- service_account_upn and delegated_profile_id). This adds the second, 'classic_app_profile':
-- app_profile_id and delegated_profile_id set, service_account_upn not. Saving either converts it to
-- 'app_profile'. The unnamed checks of 0007 on the method are replaced by named ones.

DO $$
DECLARE c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'scan_profiles'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%auth_method%'
    LOOP
        EXECUTE format('ALTER TABLE scan_profiles DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;

ALTER TABLE scan_profiles
    ADD CONSTRAINT scan_profiles_auth_method
        CHECK (auth_method IN ('app_profile', 'classic', 'classic_app_profile')),
    ADD CONSTRAINT scan_profiles_app_profile_set
        CHECK ((auth_method IN ('app_profile', 'classic_app_profile')) = (app_profile_id IS NOT NULL)),
    ADD CONSTRAINT scan_profiles_service_account_set
        CHECK ((auth_method = 'classic') = (service_account_upn IS NOT NULL)),
    ADD CONSTRAINT scan_profiles_delegated_profile_set
        CHECK ((auth_method IN ('classic', 'classic_app_profile')) = (delegated_profile_id IS NOT NULL));
