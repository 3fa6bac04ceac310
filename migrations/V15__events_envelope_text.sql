-- The outbox's envelope as text (issue 15, cost): the service serializes every envelope
-- itself (serde_json, raw JSON parts checked as they are embedded), so PostgreSQL parsing it
-- again as `json` on the single writer's session was pure cost on the ingestion path (about a
-- microsecond per 600-byte event). The bytes stored and published are the same; read it with
-- `envelope::json` to query into it.
ALTER TABLE events ALTER COLUMN envelope TYPE TEXT;
