-- Foreign keys on the tables every ingest and every task run writes cost a trigger and a row
-- lock per row: a third of a 1,000-payment ingest statement (auto_explain, 2026-11-28). The
-- storage actor is the only writer, fences every task write on the task row, and deletes what
-- a connector owns explicitly (DeleteConnector, WipeConnectorData), so they are dropped.
-- A balance still references its account: a balance that arrives before its account is
-- refused (and retried) rather than stored against nothing.
ALTER TABLE tasks DROP CONSTRAINT tasks_connector_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_parent_id_fkey;
ALTER TABLE connector_kv DROP CONSTRAINT connector_kv_connector_id_fkey;
ALTER TABLE accounts DROP CONSTRAINT accounts_connector_id_fkey;
ALTER TABLE payments DROP CONSTRAINT payments_connector_id_fkey;
ALTER TABLE payment_adjustments DROP CONSTRAINT payment_adjustments_payment_id_fkey;

-- A task's id is the UUID v5 of its connector id and canonical descriptor, so the id alone
-- identifies it: the unique key on (connector_id, descriptor_key) duplicated the primary key,
-- and nothing reads tasks by parent (the runtime keeps parent links in memory).
ALTER TABLE tasks DROP COLUMN descriptor_key;
DROP INDEX tasks_by_parent;
