-- 0006_hot_path_keys.sql - drop the foreign keys that made every ingested
-- message and every notification lock a shared parent row.
--
-- A foreign-key check in PostgreSQL runs SELECT ... FOR KEY SHARE on the
-- referenced row. Every message of one agency locked the same agencies row,
-- and every notification its account row: under concurrent group commits
-- that is hot-row locking (multixacts) on the busiest path, measured at
-- roughly half of a 1,000-row ingest statement.
--
-- What the dropped keys guarded cannot happen in berichtd: agencies and
-- accounts are never deleted (an account is deactivated, an agency kept for
-- its statistics), and every writer takes agency_id from an authenticated
-- token and account_id from a row it has just read. The keys that do work
-- stay: notifications -> messages (ON DELETE CASCADE, used by the retention
-- janitor) and the unique (agency_id, referentie).

ALTER TABLE messages DROP CONSTRAINT messages_agency_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_account_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT notifications_account_id_fkey;
