-- The sender's outcome writes should be HOT updates (heap-only tuples, no index
-- touched): Postgres can do that only when no index covers a column the update
-- changes (partial-index predicates count) and the page has room. So the
-- status-dependent indexes of 0500 move to columns the hot path leaves alone,
-- provider ids move to their own table, and pages keep 20 % free.

DROP INDEX messages_unknown;
DROP INDEX messages_provider_message;

-- Set when a job becomes unknown, cleared when it is settled.
ALTER TABLE messages ADD COLUMN unknown_since timestamptz;
CREATE INDEX messages_unknown ON messages (account_id, unknown_since DESC)
    WHERE unknown_since IS NOT NULL;

ALTER TABLE messages SET (fillfactor = 80);

-- Delivery receipts find their message by the provider's id.
CREATE TABLE provider_message_ids (
    provider_message_id text NOT NULL,
    job_id              text NOT NULL REFERENCES messages (job_id) ON DELETE CASCADE,
    PRIMARY KEY (provider_message_id, job_id)
);
INSERT INTO provider_message_ids (provider_message_id, job_id)
    SELECT provider_message_id, job_id FROM messages WHERE provider_message_id <> '';
UPDATE messages SET unknown_since = updated_at WHERE status = 'unknown';
