-- The audit log: one row per state-changing API call (POST, PATCH, DELETE) that came with an
-- identity: who, what, when and how it ended. Requests refused for want of a valid token
-- (401) are logged as a line, not stored, so that anonymous traffic cannot fill the table.
-- It never holds a token, a request body or a config value.
--
-- No connector cascade: the rows of an uninstalled connector's calls stay (uninstall's
-- DELETE_OWNED leaves this table alone on purpose); nothing references it.
CREATE TABLE audit_log (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    -- a static token's name, a JWT's `sub`, or 'anonymous' when authentication is off
    principal     TEXT NOT NULL,
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('token', 'jwt', 'anonymous')),
    method        TEXT NOT NULL,
    -- the route template, e.g. /api/payments/connectors/{provider}/{connectorID}/reset
    route         TEXT NOT NULL,
    provider      TEXT,
    connector_id  TEXT,
    task_id       TEXT,
    payment_id    TEXT,
    status        SMALLINT NOT NULL,
    -- 'ok' (2xx/3xx), 'denied' (403), 'rejected' (other 4xx), 'failed' (5xx)
    outcome       TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'rejected', 'failed')),
    request_id    TEXT
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_connector ON audit_log (connector_id, at DESC) WHERE connector_id IS NOT NULL;
