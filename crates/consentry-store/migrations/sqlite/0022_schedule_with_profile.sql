-- The monitor's schedule row is created with its profile (in the profile's insert transaction), no longer by
-- the monitor's lease, which had to find unscheduled profiles with an anti-join over every profile on each
-- lease. This backfills, once, the rows of profiles that were never leased: due since their creation, as the
-- lease scheduled them before (due at once).
INSERT INTO check_schedule (profile_id, tenant_id, next_check_at)
SELECT p.id, p.tenant_id, p.created_at FROM profiles p
WHERE NOT EXISTS (SELECT 1 FROM check_schedule s WHERE s.profile_id = p.id);

-- The lease takes due rows in (next_check_at, profile_id) order: this index answers that order, so a lease
-- reads its first free due rows instead of sorting every due row.
DROP INDEX check_schedule_due;
CREATE INDEX check_schedule_due_order ON check_schedule (next_check_at, profile_id);
