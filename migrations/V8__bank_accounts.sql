-- Bank accounts (Formance Payments v1): registered through the API, forwarded to connectors
-- that can register them with their provider. The account number and the IBAN are stored
-- encrypted with the service's keyring (src/secrets): each column holds
-- {"$encrypted": {"kid", "nonce", "ciphertext"}} (AES-256-GCM, associated data binding the
-- value to the bank account's id and the field), never the value in clear.
CREATE TABLE bank_accounts (
    id              UUID PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL,
    name            TEXT NOT NULL,
    country         TEXT NOT NULL,
    swift_bic_code  TEXT,
    account_number  JSONB,
    iban            JSONB,
    metadata        JSONB,
    -- the connector it was last forwarded to (successfully), if any.
    connector_id    TEXT REFERENCES connectors (id) ON DELETE SET NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (account_number IS NOT NULL OR iban IS NOT NULL)
);
CREATE INDEX bank_accounts_by_created ON bank_accounts (created_at, id);

-- The accounts a connector created for a bank account (Formance's related accounts), linked
-- by the connector's ingest. `id` is the UUID v5 of the bank account id and the account id.
-- No foreign key to accounts (a hot table, migration V3): uninstall and reset delete a
-- connector's links with its accounts (DELETE_OWNED).
CREATE TABLE bank_account_related_accounts (
    id               UUID PRIMARY KEY,
    bank_account_id  UUID NOT NULL REFERENCES bank_accounts (id) ON DELETE CASCADE,
    connector_id     TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    account_id       TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (bank_account_id, account_id)
);
CREATE INDEX bank_account_related_by_connector ON bank_account_related_accounts (connector_id);
