-- What an app profile scans (catalog scan targets), SQLite dialect. Migrations only move forward: never edit an
-- applied file, add a new one.
--
-- The Power Platform app types (Insights, EnPower, Fly and Cloud Governance for Power Platform) let the person
-- re-authorizing choose what the profile will scan; the choice decides what the consenting user needs and is
-- kept with the profile (and with a pending re-authorization until it completes). Catalog version 2 modelled it
-- as selectable functions gated by subscription modules (`scan-power-platform`, `scan-power-bi`); those choices
-- move here, as the scan targets they stood for, and leave `functions` (which stays for the Cloud Backup
-- delegated app's functions). Only the exact values the old catalog allowed are moved.

ALTER TABLE profiles ADD COLUMN scan_targets TEXT NOT NULL DEFAULT '[]';   -- JSON array of scan target keys
ALTER TABLE pending_authorizations ADD COLUMN scan_targets TEXT NOT NULL DEFAULT '[]';

UPDATE profiles
SET scan_targets = CASE functions
        WHEN '["scan-power-platform"]' THEN '["environments","connections","power-apps","solutions","power-automate","copilot-studio"]'
        WHEN '["scan-power-bi"]' THEN '["power-bi"]'
        ELSE '["environments","connections","power-apps","solutions","power-automate","copilot-studio","power-bi"]'
    END,
    functions = '[]'
WHERE functions IN ('["scan-power-platform"]', '["scan-power-bi"]', '["scan-power-platform","scan-power-bi"]',
                    '["scan-power-bi","scan-power-platform"]')
  AND app_type IN ('insights-power-platform', 'enpower-power-platform', 'fly-power-platform', 'cloud-governance-power-platform');

UPDATE pending_authorizations
SET scan_targets = CASE functions
        WHEN '["scan-power-platform"]' THEN '["environments","connections","power-apps","solutions","power-automate","copilot-studio"]'
        WHEN '["scan-power-bi"]' THEN '["power-bi"]'
        ELSE '["environments","connections","power-apps","solutions","power-automate","copilot-studio","power-bi"]'
    END,
    functions = '[]'
WHERE functions IN ('["scan-power-platform"]', '["scan-power-bi"]', '["scan-power-platform","scan-power-bi"]',
                    '["scan-power-bi","scan-power-platform"]')
  AND profile_id IN (SELECT id FROM profiles WHERE app_type IN ('insights-power-platform', 'enpower-power-platform', 'fly-power-platform', 'cloud-governance-power-platform'));
