-- A taken pending re-authorization is kept until its result is saved. Migrations only move forward: never edit an
-- applied file, add a new one.
--
-- The callback used to delete the row when it took it, so a process killed (or a request timed out) after the
-- take and before the result was saved left the profile "pending" with nothing to finish, cancel or expire it.
-- Now the take marks the row: `taken_until` is the deadline by which the taker saves the result and deletes the
-- row. NULL: not taken (the state can still be used once). A row past its deadline belongs to a taker that died:
-- the monitor then puts the profile back to the status its credentials have (consentry-domain's check.rs).
ALTER TABLE pending_authorizations ADD COLUMN taken_until BIGINT;
