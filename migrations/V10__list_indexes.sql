-- Indexes behind the list filters and orders (issue 14: Formance's query language, sort,
-- updatedAt-ordered listing). The composite ones serve a keyset page directly (an equality
-- prefix, then the order columns); the others find the matching rows, which are then sorted.
--
-- payments.updated_at / accounts.updated_at exist since V1 (default now(); the ingest upsert
-- sets them only when a tracked field changed, the metadata patch on every patch). Writes go
-- through the storage actor one transaction at a time, so now() (the transaction's start)
-- grows with commit order and an updatedAt page never skips a row committed after the
-- previous page was read.
CREATE INDEX IF NOT EXISTS payments_by_updated ON payments (updated_at, id);
CREATE INDEX IF NOT EXISTS accounts_by_updated ON accounts (updated_at, id);

-- connector filter + created order (replaces the single-column index: same prefix).
CREATE INDEX IF NOT EXISTS payments_by_connector_created
    ON payments (connector_id, created_at, id);
DROP INDEX IF EXISTS payments_by_connector;
CREATE INDEX IF NOT EXISTS payments_by_status_created ON payments (status, created_at, id);
CREATE INDEX IF NOT EXISTS payments_by_reference ON payments (reference);
CREATE INDEX IF NOT EXISTS payments_by_source ON payments (source_account_id)
    WHERE source_account_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_by_destination ON payments (destination_account_id)
    WHERE destination_account_id IS NOT NULL;
-- metadata[key] $match compiles to `metadata @> '{"key": "value"}'`: jsonb_path_ops GIN.
CREATE INDEX IF NOT EXISTS payments_metadata ON payments USING gin (metadata jsonb_path_ops);

CREATE INDEX IF NOT EXISTS accounts_by_connector_created
    ON accounts (connector_id, created_at, id);
DROP INDEX IF EXISTS accounts_by_connector;
CREATE INDEX IF NOT EXISTS accounts_by_reference ON accounts (reference);
CREATE INDEX IF NOT EXISTS accounts_metadata ON accounts USING gin (metadata jsonb_path_ops);
