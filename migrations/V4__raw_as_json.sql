-- A provider's raw object is kept and returned, never queried: `json` stores its text as
-- given (validated, not decomposed), so writing it skips building a jsonb value and reading
-- it skips printing one back to text. Measured (2026-11-28): `GET /payments?pageSize=100`
-- prints 200 raw objects per page, and each ingested payment stores two.
ALTER TABLE payments ALTER COLUMN raw TYPE json USING raw::json;
ALTER TABLE payment_adjustments ALTER COLUMN raw TYPE json USING raw::json;
ALTER TABLE accounts ALTER COLUMN raw TYPE json USING raw::json;
