-- Pools (Formance's named groups of accounts) and their members.
--
-- A member references its account with ON DELETE CASCADE: uninstalling or resetting a
-- connector deletes its accounts (DeleteConnector, WipeConnectorData) and with them their
-- pool memberships, so no pool ever lists an account that is gone; the pool itself stays
-- (as in Formance, which removes the connector's pool accounts and keeps the pool). The key
-- costs nothing on ingestion: account upserts never change an account's id.
CREATE TABLE pools (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    -- STATIC: the member list; DYNAMIC: a query was set (kept and returned, see docs/api.md).
    type       TEXT NOT NULL CHECK (type IN ('STATIC', 'DYNAMIC')),
    query      JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pools_by_created ON pools (created_at DESC, id DESC);

CREATE TABLE pool_accounts (
    pool_id    UUID NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (pool_id, account_id)
);
-- An account's pools (its `pools` field) and the cascade from accounts.
CREATE INDEX pool_accounts_by_account ON pool_accounts (account_id);
