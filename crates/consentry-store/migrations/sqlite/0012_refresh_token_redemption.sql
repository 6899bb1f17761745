-- When each delegated profile's refresh token was last redeemed successfully (by a check or the token
-- API). Microsoft revokes a refresh token unused for 90 days (AADSTS700082); a check that cannot reach
-- Microsoft for long warns before that from this time. Written only forward (a save never moves it back).
-- Migrations only move forward: never edit an applied file, add a new one.

ALTER TABLE profiles ADD COLUMN refresh_token_redeemed_at BIGINT;

-- Existing profiles: every check redeemed the token before this column existed, so the last check (or
-- the authorization) is the best record there is.
UPDATE profiles SET refresh_token_redeemed_at = COALESCE(last_checked_at, authorized_at)
WHERE consent_object_id IS NOT NULL;
