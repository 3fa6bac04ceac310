-- The initial schema: connectors, their tasks and key-value store, and the ingested data.
-- Every row of a connector cascades from it, so uninstall is one DELETE.

CREATE TABLE connectors (
    -- Formance's connector id: base64url of {"Provider", "Reference"}.
    id           TEXT PRIMARY KEY,
    reference    UUID NOT NULL UNIQUE,
    provider     TEXT NOT NULL,
    name         TEXT NOT NULL UNIQUE,
    config       JSONB NOT NULL,
    -- false while paused (Kafka Connect's pause; beyond Formance).
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    -- 'installed', or an operation marked durably before it runs so that a crash mid-way is
    -- finished at the next boot ('installing' is rolled back: install is all-or-nothing).
    lifecycle    TEXT NOT NULL DEFAULT 'installing'
                 CHECK (lifecycle IN ('installing', 'installed', 'uninstalling', 'resetting')),
    -- true for connectors declared in the settings file (reconciled at boot).
    declared     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    -- UUID v5 of the connector id and the canonical descriptor.
    id               UUID PRIMARY KEY,
    connector_id     TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    parent_id        UUID REFERENCES tasks (id) ON DELETE CASCADE,
    descriptor       JSONB NOT NULL,
    -- canonical JSON (sorted keys) of the descriptor: identifies the task in its connector.
    descriptor_key   TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('PENDING', 'ACTIVE', 'TERMINATED', 'FAILED', 'STOPPED')),
    error            TEXT,
    state            JSONB,
    -- persisted schedule options (every change is written).
    schedule         TEXT NOT NULL
                     CHECK (schedule IN ('RUN_NOW', 'RUN_NOW_SYNC', 'RUN_IN_DURATION',
                                         'RUN_SCHEDULED_AT', 'RUN_PERIODICALLY')),
    restart          TEXT NOT NULL
                     CHECK (restart IN ('RESTART_NEVER', 'RESTART_IF_NOT_ACTIVE',
                                        'RESTART_ALWAYS', 'STOP_AND_RESTART')),
    period_ms        BIGINT,
    on_interrupt     TEXT NOT NULL DEFAULT 'RESUME' CHECK (on_interrupt IN ('RESUME', 'FAIL')),
    max_restarts     INTEGER NOT NULL DEFAULT 5,
    -- when the next run (or retry) is due; NULL = as soon as a slot is free.
    due_at           TIMESTAMPTZ,
    -- retries of the current run (retryable errors) and consecutive failed runs.
    attempts         INTEGER NOT NULL DEFAULT 0,
    restarts         INTEGER NOT NULL DEFAULT 0,
    -- bumped on every (re)start; writes from a superseded run are rejected.
    run_number       BIGINT NOT NULL DEFAULT 0,
    -- true while a run is in progress (for on_interrupt = FAIL after a crash).
    running          BOOLEAN NOT NULL DEFAULT FALSE,
    last_success_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (connector_id, descriptor_key)
);
CREATE INDEX tasks_by_connector_created ON tasks (connector_id, created_at DESC, id DESC);
CREATE INDEX tasks_live ON tasks (connector_id) WHERE status IN ('PENDING', 'ACTIVE');
CREATE INDEX tasks_by_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;

-- A small durable key-value store per connector (bookkeeping such as ingested files).
CREATE TABLE connector_kv (
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, key)
);

CREATE TABLE accounts (
    -- Formance's account id: base64url of {"ConnectorID", "Reference"}.
    id            TEXT PRIMARY KEY,
    connector_id  TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    reference     TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    default_asset TEXT,
    account_name  TEXT,
    type          TEXT NOT NULL CHECK (type IN ('INTERNAL', 'EXTERNAL', 'UNKNOWN')),
    metadata      JSONB,
    raw           JSONB,
    inserted_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX accounts_by_created ON accounts (created_at DESC, id DESC);
CREATE INDEX accounts_by_connector ON accounts (connector_id);

CREATE TABLE balances (
    account_id      TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    asset           TEXT NOT NULL,
    -- exact integer in minor units; may be negative.
    balance         NUMERIC NOT NULL CHECK (balance = trunc(balance)),
    created_at      TIMESTAMPTZ NOT NULL,
    last_updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, asset, created_at)
);

CREATE TABLE payments (
    -- Formance's payment id: base64url of {"ConnectorID", "Reference", "Type"}.
    id                     TEXT PRIMARY KEY,
    connector_id           TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    reference              TEXT NOT NULL,
    type                   TEXT NOT NULL CHECK (type IN ('PAY-IN', 'PAYOUT', 'TRANSFER', 'OTHER')),
    status                 TEXT NOT NULL,
    scheme                 TEXT NOT NULL,
    asset                  TEXT NOT NULL,
    -- exact integers in minor units: 0 <= amount < 10^100.
    amount                 NUMERIC NOT NULL
                           CHECK (amount >= 0 AND amount < 1e100 AND amount = trunc(amount)),
    initial_amount         NUMERIC NOT NULL
                           CHECK (initial_amount >= 0 AND initial_amount < 1e100
                                  AND initial_amount = trunc(initial_amount)),
    source_account_id      TEXT,
    destination_account_id TEXT,
    created_at             TIMESTAMPTZ NOT NULL,
    raw                    JSONB,
    metadata               JSONB,
    inserted_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_by_created ON payments (created_at DESC, id DESC);
CREATE INDEX payments_by_connector ON payments (connector_id);

-- The history of a payment: one row per change of a tracked field.
CREATE TABLE payment_adjustments (
    id          BIGSERIAL PRIMARY KEY,
    payment_id  TEXT NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    reference   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    status      TEXT NOT NULL,
    amount      NUMERIC NOT NULL,
    raw         JSONB
);
CREATE INDEX payment_adjustments_by_payment ON payment_adjustments (payment_id, id);
