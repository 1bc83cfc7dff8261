-- SMS sent through the messaging API (SendMessage), as opposed to by a rule.
--
-- One row per accepted message: the caller's idempotency key (unique per
-- account: a retry finds the first message instead of making a second), a
-- digest of the parameters (the same key with other parameters is refused), and
-- the caller's metadata. The row is committed only once the job is stored (on
-- FOCO_SMS, or in scheduled_jobs), so a key that is found has its message.
CREATE TABLE api_sends (
    job_id          text PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- NULL when the caller gave none.
    idempotency_key text,
    request_digest  text NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    -- The account key that sent it; NULL for the admin key.
    api_key_id      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, idempotency_key)
);
CREATE INDEX api_sends_account_created ON api_sends (account_id, created_at DESC);

-- A delayed API send waits in scheduled_jobs like a rule's delayed job, and the
-- rules scheduler publishes it when due; it has no rule.
ALTER TABLE scheduled_jobs ALTER COLUMN rule_id DROP NOT NULL;
