-- The outbox's envelope packed (issue 15, cost): the service stores each envelope as a byte
-- string, LZ4-compressed behind a 0x01 marker byte (src/events/packed.rs). A SAVED_PAYMENT
-- envelope repeats the connector's long base64 id in several fields and the raw provider data
-- besides, and compresses to about half; the row's size is most of what the outbox costs the
-- single writer's session (1,000-row rounds in psql: ~7.5 µs per 820-byte envelope against
-- ~3.5 µs at half the size). Envelopes stored before keep their bytes and are read as plain
-- JSON: a packed one starts with 0x01, a JSON text with `{`.
ALTER TABLE events ALTER COLUMN envelope TYPE BYTEA USING convert_to(envelope, 'UTF8');
