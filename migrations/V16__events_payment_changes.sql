-- A payment's event by reference (issue 15, cost). Ingestion writes every payment change as
-- an adjustment row (status, amount, raw provider data) beside the payment; a SAVED_PAYMENT
-- envelope repeated all of that, so the outbox wrote each payment a second time, on the single
-- writer's path. Now a SAVED_PAYMENT row keeps only `adjustment_id` (the change's adjustment)
-- and `payment_state` (JSON: the fields a later change or a metadata patch could overwrite:
-- scheme, asset, accounts, metadata), and its envelope is built when it is read
-- (storage/queries/events.rs), from those and the payment's fields that never change. The
-- same row always builds the same bytes, so a republished event is identical; its `date` is
-- the row's `created_at`.
--
-- The adjustment and payment rows go only with a reset or uninstall of their connector, which
-- first writes the envelopes of that connector's referencing events into `envelope` (as
-- every other event has it), so no event loses its content.
ALTER TABLE events ALTER COLUMN envelope DROP NOT NULL;
ALTER TABLE events ADD COLUMN adjustment_id BIGINT;
ALTER TABLE events ADD COLUMN payment_state TEXT;
ALTER TABLE events ADD CONSTRAINT events_envelope_or_payment_change CHECK (
    (envelope IS NULL) = (adjustment_id IS NOT NULL)
    AND (adjustment_id IS NULL) = (payment_state IS NULL)
);
