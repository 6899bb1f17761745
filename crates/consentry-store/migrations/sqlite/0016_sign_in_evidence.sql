-- The evidence behind a diagnosis: the tenant's sign-in log entries (when, from which IP, which conditional
-- access policy and with what result) that a check read when the consent user's sign-in failed, or why
-- they could not be read. JSON, not secret (no tokens; the UPN and IP are already kept with the profile).
-- `profiles.reason_evidence` goes with the current reason; `profile_history.evidence` with the event that
-- recorded a reason.
-- Migrations only move forward: never edit an applied file, add a new one.

ALTER TABLE profiles ADD COLUMN reason_evidence TEXT;
ALTER TABLE profile_history ADD COLUMN evidence TEXT;
