-- A few recent events of each source, as they arrived, for the rule editor's
-- preview ("preview against a real event"). Events themselves are not kept
-- (FOCO_EVENTS is a work queue), so rules writes a sample now and then, off the
-- event's path: at most one per source every few seconds, into one of a few
-- slots per source (a ring, so a source never holds more than that), pruned
-- after 7 days with the other short-lived rows (a deleted source's samples
-- too). No foreign keys, as the other tables rules writes (see 0703).
CREATE TABLE event_samples (
    account_id  uuid NOT NULL,
    source_id   text NOT NULL,
    slot        smallint NOT NULL,
    event_id    text NOT NULL,
    event_type  text NOT NULL DEFAULT '',
    headers     jsonb NOT NULL DEFAULT '{}',
    -- The body as JSON text, as rules reads it.
    payload     text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (source_id, slot)
);

CREATE INDEX event_samples_account_source ON event_samples (account_id, source_id, received_at DESC);
CREATE INDEX event_samples_age ON event_samples (received_at);
