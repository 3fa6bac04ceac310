-- Events out (issue 15): a transactional outbox. Every real change writes its event here in
-- the transaction that makes the change (storage/commands/events.rs), so a change is never
-- committed without its event, nor an event without its change. Publishers (NATS JetStream,
-- webhooks) read it in `position` order and record how far they got in `event_cursors`.
--
-- `position` is the outbox order. Every insert goes through the storage actor, which commits
-- one transaction at a time, so positions are handed out in commit order: a reader that has
-- seen position p never later finds a smaller one committed (a rolled-back transaction leaves
-- a gap, which readers skip). Only the primary key is indexed: the outbox is written on the
-- ingestion path, and every index is paid for by every payment.
CREATE TABLE events (
    position     BIGSERIAL PRIMARY KEY,
    -- Stable across re-publishing: NATS `Nats-Msg-Id`, the webhook id header.
    id           UUID NOT NULL DEFAULT gen_random_uuid(),
    -- The connector the event belongs to; '' for events of no connector (bank accounts, pools:
    -- one sequence of their own). No foreign key: an uninstalled connector's events stay until
    -- pruned.
    connector_id TEXT NOT NULL,
    -- 1, 2, 3 … per connector_id, in `position` order, never reused (event_sequences).
    sequence     BIGINT NOT NULL,
    -- Formance's event type (SAVED_PAYMENT …), for filtering without parsing the envelope.
    type         TEXT NOT NULL,
    -- The whole Formance v1 envelope (date, app, version, type, payload), sent as is.
    envelope     JSON NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The last sequence number handed out per connector. Kept when the connector is uninstalled
-- or reset, so a sequence never restarts.
CREATE TABLE event_sequences (
    connector_id TEXT PRIMARY KEY,
    last_sequence BIGINT NOT NULL
);

-- How far each publisher got: every event at or below `position` is delivered (or, for a
-- webhook, recorded as a delivery of its own). Pruning keeps every event above the smallest
-- position here.
CREATE TABLE event_cursors (
    publisher  TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
