-- Each event remembers the correlation id of the request that caused it (sent as the `correlation_id` SNS message
-- attribute, logged by every consumer) and the request's X-Ray trace id (handed to SNS as the trace header).
-- Nullable: rows written before this migration, and changes made outside a request, have neither. No CHECK here:
-- validating one would scan the whole (ever-growing) outbox under an exclusive lock while the API waits; the API
-- writes only ids it validated (selfnest_api/correlation.py), and a nullable column without a default is added
-- without rewriting the table.
ALTER TABLE outbox_events ADD COLUMN correlation_id text;
ALTER TABLE outbox_events ADD COLUMN trace_id text;
