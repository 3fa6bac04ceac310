-- Webhooks out (issue 15): the endpoints configured through the Formance Webhooks v1 API
-- (/api/webhooks/configs). Each ACTIVE config has a publisher named `webhook:<id>` reading the
-- outbox (V11) from its own cursor in `event_cursors`.
CREATE TABLE webhook_configs (
    id          UUID PRIMARY KEY,
    -- An http(s) URL: every matching event is POSTed there.
    endpoint    TEXT NOT NULL,
    -- The signing secret (base64 of 24 bytes, as Formance's), sealed by the service's Vault
    -- like connector secrets: `{"$encrypted": {"kid", "nonce", "ciphertext"}}`, bound to the id.
    secret      JSON NOT NULL,
    -- Formance's form, lower case: `payments.saved_payment` …
    event_types TEXT[] NOT NULL,
    active      BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
