-- Transfer initiations (money out through connectors), as Formance Payments v1 has them: the
-- initiation, one history row per status change, the payments the connector reported for it,
-- and its reversals. Amounts are exact integers (NUMERIC), never floats. Every row belongs to
-- a connector and goes with it (the connector row's delete cascades; a reset deletes them
-- with the connector's other data).

CREATE TABLE transfer_initiations (
    -- Formance's id: base64url of {"ConnectorID", "Reference"}.
    id                     TEXT PRIMARY KEY,
    connector_id           TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    reference              TEXT NOT NULL,
    type                   TEXT NOT NULL CHECK (type IN ('TRANSFER', 'PAYOUT')),
    status                 TEXT NOT NULL CHECK (status IN (
                               'WAITING_FOR_VALIDATION', 'VALIDATED', 'PROCESSING', 'PROCESSED',
                               'FAILED', 'REJECTED', 'ASK_RETRIED', 'ASK_REVERSED',
                               'REVERSE_PROCESSING', 'REVERSE_FAILED', 'PARTIALLY_REVERSED',
                               'REVERSED')),
    -- what is left after reversals; initial_amount is what was asked.
    amount                 NUMERIC NOT NULL
                           CHECK (amount >= 0 AND amount < 1e100 AND amount = trunc(amount)),
    initial_amount         NUMERIC NOT NULL
                           CHECK (initial_amount > 0 AND initial_amount < 1e100
                                  AND initial_amount = trunc(initial_amount)),
    asset                  TEXT NOT NULL,
    source_account_id      TEXT,
    destination_account_id TEXT NOT NULL,
    description            TEXT NOT NULL,
    metadata               JSONB,
    scheduled_at           TIMESTAMPTZ NOT NULL,
    -- the last failure's message (cleared when a new attempt starts).
    error                  TEXT,
    -- 0 before the first send; each send (approve, retry) is a new attempt with its own task.
    attempt                INT NOT NULL DEFAULT 0,
    -- the task of the current attempt: its interruption marks the initiation FAILED.
    task_id                UUID,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX transfer_initiations_by_created ON transfer_initiations (created_at DESC, id DESC);
CREATE INDEX transfer_initiations_by_task ON transfer_initiations (task_id)
    WHERE task_id IS NOT NULL;
CREATE INDEX transfer_initiations_by_connector ON transfer_initiations (connector_id);

-- One row per status change, with the error that came with it (Formance's relatedAdjustments).
CREATE TABLE transfer_initiation_adjustments (
    id                     UUID PRIMARY KEY,
    seq                    BIGINT GENERATED ALWAYS AS IDENTITY,
    transfer_initiation_id TEXT NOT NULL REFERENCES transfer_initiations (id) ON DELETE CASCADE,
    created_at             TIMESTAMPTZ NOT NULL,
    status                 TEXT NOT NULL,
    error                  TEXT,
    metadata               JSONB
);
CREATE INDEX transfer_initiation_adjustments_by_initiation
    ON transfer_initiation_adjustments (transfer_initiation_id, seq);

-- The payments the connector reported for an initiation (Formance's relatedPayments).
CREATE TABLE transfer_initiation_payments (
    transfer_initiation_id TEXT NOT NULL REFERENCES transfer_initiations (id) ON DELETE CASCADE,
    payment_id             TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    error                  TEXT,
    PRIMARY KEY (transfer_initiation_id, payment_id)
);

CREATE TABLE transfer_reversals (
    -- Formance's id: base64url of {"ConnectorID", "Reference"}.
    id                     TEXT PRIMARY KEY,
    transfer_initiation_id TEXT NOT NULL REFERENCES transfer_initiations (id) ON DELETE CASCADE,
    connector_id           TEXT NOT NULL,
    reference              TEXT NOT NULL,
    description            TEXT NOT NULL,
    amount                 NUMERIC NOT NULL
                           CHECK (amount > 0 AND amount < 1e100 AND amount = trunc(amount)),
    asset                  TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('PROCESSING', 'PROCESSED', 'FAILED')),
    error                  TEXT,
    metadata               JSONB,
    task_id                UUID NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX transfer_reversals_by_initiation ON transfer_reversals (transfer_initiation_id);
CREATE INDEX transfer_reversals_by_task ON transfer_reversals (task_id);
