-- PostgreSQL's 0024 leaves room on check_schedule's pages for the lease's row versions and vacuums the
-- table sooner. SQLite updates a row in place and keeps no dead versions, so it needs neither; this file keeps
-- both dialects at the same schema version (`consentry db copy` copies only between equal versions).
SELECT 1;
