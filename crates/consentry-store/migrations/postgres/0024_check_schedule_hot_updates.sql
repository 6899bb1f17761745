-- The monitor updates every schedule row twice per check: the lease sets lease_owner and lease_until, the
-- release moves next_check_at. Each update writes a new row version, and a version that changes no indexed
-- column stays on its page without new index entries (a HOT update) only if the page has room. Bulk-loaded
-- pages are full, so every lease inserted two index entries per row (primary key and due order).
--   - fillfactor 70 leaves room on each page for the lease's versions (new pages; existing rows move to such
--     pages as they are updated);
--   - the release cannot be HOT (next_check_at is the due index's key): it leaves a dead entry at the front of
--     the due index, which every lease walks past until VACUUM removes it. By default autovacuum waits for
--     a fifth of the table to be dead (200,000 rows at a million profiles); here it runs after 10,000.
ALTER TABLE check_schedule SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);
