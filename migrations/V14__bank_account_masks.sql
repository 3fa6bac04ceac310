-- Events out (issue 15): a bank account's events (SAVED_BANK_ACCOUNT) carry its account number
-- and IBAN masked as the API shows them (Formance's `Offuscate`), never in clear. They are
-- built by the storage commands that change the bank account (create, forward, metadata, a
-- related account linked by a connector's ingest), which cannot open the sealed columns (the
-- keyring is the API's): the API stores the masks with the sealed values at creation. A mask
-- shows no more than every API read and every event already show (and the outbox stores).
-- Bank accounts created before this migration have none (the masks need the clear values):
-- their events carry '' for both numbers (docs/events.md).
ALTER TABLE bank_accounts
    ADD COLUMN account_number_masked TEXT,
    ADD COLUMN iban_masked TEXT;
