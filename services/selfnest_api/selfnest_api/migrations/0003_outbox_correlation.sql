-- Each event remembers the correlation id of the request that caused it (sent as the `correlation_id` SNS message
-- attribute, logged by every consumer) and the request's X-Ray trace id (handed to SNS as the trace header).
-- Nullable: rows written before this migration, and changes made outside a request, have neither.
ALTER TABLE outbox_events ADD COLUMN correlation_id text CHECK (char_length(correlation_id) <= 128);
ALTER TABLE outbox_events ADD COLUMN trace_id text CHECK (char_length(trace_id) <= 64);
