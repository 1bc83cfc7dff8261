-- Delivery state the sender keeps beyond one row per job: attempt history,
-- multi-part receipts, opt-outs, dead letters, jobs held for quiet hours, and the
-- shared rate-limit and throttling state of provider routes. Read by control's
-- DeliveryService; written mostly by the sender.

-- messages.status gains two final values: cancelled | opted-out.
ALTER TABLE messages
    -- The job's sender id / from override, so a job can be published again.
    ADD COLUMN sender_id       text NOT NULL DEFAULT '',
    -- foco.v1.Priority: 1 transactional, 2 marketing.
    ADD COLUMN priority        smallint NOT NULL DEFAULT 1,
    ADD COLUMN segments        integer NOT NULL DEFAULT 0,
    -- Decimal text as the provider reported it; empty when it did not.
    ADD COLUMN price           text NOT NULL DEFAULT '',
    ADD COLUMN price_currency  text NOT NULL DEFAULT '',
    -- JSON array of steps: {"at": ms, "attempt": n, "provider": route, "outcome": .., "detail": ..}.
    ADD COLUMN history         jsonb NOT NULL DEFAULT '[]',
    -- The job must go through `provider` only: a call there may have been
    -- accepted, and only that provider's idempotency key makes a retry safe.
    ADD COLUMN provider_locked boolean NOT NULL DEFAULT false,
    ADD COLUMN delivered_at    timestamptz;

-- Delivery receipts find their message by the provider's id.
CREATE INDEX messages_provider_message ON messages (provider_message_id)
    WHERE provider_message_id <> '';
-- The unknown-jobs list; partial, so the hot path never maintains it.
CREATE INDEX messages_unknown ON messages (account_id, updated_at DESC)
    WHERE status = 'unknown';

-- Parts of a message a provider reported under their own ids (Vonage answers one
-- message id per segment). Single-part messages have no rows here.
CREATE TABLE message_parts (
    job_id              text NOT NULL REFERENCES messages (job_id) ON DELETE CASCADE,
    part_index          integer NOT NULL,
    provider_message_id text NOT NULL,
    -- sent | delivered | undelivered
    status              text NOT NULL DEFAULT 'sent',
    error               text NOT NULL DEFAULT '',
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, part_index)
);
CREATE INDEX message_parts_provider_message ON message_parts (provider_message_id);

-- Numbers that must not receive SMS from an account.
CREATE TABLE opt_outs (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- E.164
    phone       text NOT NULL,
    -- inbound | provider | api
    source      text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, phone)
);

-- Jobs that ran out of attempts or age, with everything needed to retry them.
CREATE TABLE dead_letters (
    job_id             text PRIMARY KEY REFERENCES messages (job_id) ON DELETE CASCADE,
    account_id         uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    reason             text NOT NULL,
    attempts           integer NOT NULL,
    -- foco.v1.SmsJob as it was published.
    job                bytea NOT NULL,
    history            jsonb NOT NULL DEFAULT '[]',
    dead_lettered_at   timestamptz NOT NULL DEFAULT now(),
    retried_at         timestamptz,
    retry_count        integer NOT NULL DEFAULT 0
);
CREATE INDEX dead_letters_account ON dead_letters (account_id, dead_lettered_at DESC);

-- Marketing jobs held until the recipient's quiet hours end. The sender
-- publishes them again when due (any replica; rows are claimed with SKIP LOCKED).
CREATE TABLE held_jobs (
    job_id      text PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    release_at  timestamptz NOT NULL,
    -- foco.v1.SmsJob as it was published.
    job         bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_jobs_release ON held_jobs (release_at);

-- Per-route send budget, one row per route and wall-clock second (Postgres'
-- clock, so replicas agree on the window). Senders lease tokens from the row;
-- the sum of leases never exceeds the route's rate limit.
CREATE TABLE route_rate_windows (
    route_key    text NOT NULL,
    window_start bigint NOT NULL,
    used         integer NOT NULL,
    -- Tokens granted by the last lease (read back by the leasing statement).
    last_grant   integer NOT NULL,
    PRIMARY KEY (route_key, window_start)
);

-- A provider answered 429: the whole route waits, on every replica.
CREATE TABLE route_pauses (
    route_key    text PRIMARY KEY,
    paused_until timestamptz NOT NULL,
    reason       text NOT NULL DEFAULT ''
);
