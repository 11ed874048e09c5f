-- 0018_first_due.sql - when a notification was first due (issue 15,
-- "metrics that tell the truth").
--
-- A retry moves due_at to the next attempt, so the lag from due to sent
-- measured from due_at showed only the last backoff: during a 30 s relay
-- outage 1,620 notifications took over 10 s, and the histogram showed
-- about 68 above 5 s. first_due_at keeps the due time the first retry
-- moved away from; NULL means due_at was never moved by a retry (the
-- common case, so nothing is written on the ingest path). The quiet hours
-- move it too: a notification cannot be late before it may be sent.
-- The lag is measured from coalesce(first_due_at, due_at)
-- (daemon/notify/claim.c).

ALTER TABLE notifications ADD COLUMN first_due_at timestamptz;
