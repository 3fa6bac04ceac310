-- A task row is written twice per run: inserted (or restarted) PENDING, then ended. Both
-- updates of a run can be HOT (no index entry rewritten) when no indexed column changes and
-- the page has room: `status` must not appear in an index, and pages keep free space.
-- The partial index of live tasks only served the boot-time restore, which now reads the
-- connector's tasks through tasks_by_connector_created.
DROP INDEX tasks_live;
ALTER TABLE tasks SET (fillfactor = 70);
