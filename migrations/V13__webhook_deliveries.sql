-- Webhooks out (issue 15): one delivery per (config, event) a webhook publisher sent or tried
-- to send, and every HTTP attempt it made (Formance Webhooks' `deliveries` and
-- `delivery_attempts`). The payload is kept, so a replay works after the event is pruned from
-- the outbox. No foreign key to webhook_configs: a deleted config's history stays.
CREATE TABLE webhook_deliveries (
    -- UUID v5 of (config id, event id): an event re-read after a crash finds its delivery.
    -- Also the `formance-webhook-id` header, the same at every attempt.
    id                UUID PRIMARY KEY,
    config_id         UUID NOT NULL,
    event_id          UUID NOT NULL,
    -- Formance's form: `payments.saved_payment`.
    event_type        TEXT NOT NULL,
    connector_id      TEXT NOT NULL,
    sequence          BIGINT NOT NULL,
    -- The body sent, byte for byte (the signature covers it).
    payload           TEXT NOT NULL,
    -- pending (retrying) | succeeded | failed
    status            TEXT NOT NULL,
    attempt_count     INTEGER NOT NULL DEFAULT 0,
    replay_generation INTEGER NOT NULL DEFAULT 0,
    cycle_started_at  TIMESTAMPTZ,
    next_attempt_at   TIMESTAMPTZ,
    last_attempt_at   TIMESTAMPTZ,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_by_config ON webhook_deliveries (config_id, created_at);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
    id                UUID PRIMARY KEY,
    delivery_id       UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    -- 1, 2, 3 … per delivery, replays included.
    attempt_number    INTEGER NOT NULL,
    replay_generation INTEGER NOT NULL,
    endpoint          TEXT NOT NULL,
    -- succeeded | retryable_failure | permanent_failure
    outcome           TEXT NOT NULL,
    -- 0 when no answer came (refused connection, timeout).
    status_code       INTEGER NOT NULL,
    error             TEXT,
    duration_millis   BIGINT,
    response_excerpt  TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (delivery_id, attempt_number)
);
