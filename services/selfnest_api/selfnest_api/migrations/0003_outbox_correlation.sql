-- Each event remembers the correlation id of the request that caused it (sent as the `correlation_id` SNS message
-- attribute, logged by every consumer) and the request's X-Ray trace id (handed to SNS as the trace header).
-- Nullable: rows written before this migration, and changes made outside a request, have neither; a nullable column
-- without a default is added without rewriting the table.
-- ALTER TABLE waits for an exclusive lock behind the running relay's transaction, and bookings would queue behind
-- it: give up after a few seconds instead (the migrate task fails and is run again) than stall the API.
SET LOCAL lock_timeout = '5s';
ALTER TABLE outbox_events ADD COLUMN correlation_id text;
ALTER TABLE outbox_events ADD COLUMN trace_id text;
-- The same shapes the API accepts (selfnest_api/correlation.py). NOT VALID: new rows are checked, the existing
-- (ever-growing) outbox is not scanned under the lock.
ALTER TABLE outbox_events ADD CONSTRAINT outbox_correlation_id_well_formed
    CHECK (correlation_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$') NOT VALID;
ALTER TABLE outbox_events ADD CONSTRAINT outbox_trace_id_well_formed
    CHECK (trace_id ~ '^1-[0-9a-f]{8}-[0-9a-f]{24}$') NOT VALID;
