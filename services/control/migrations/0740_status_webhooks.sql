-- Status webhooks: endpoints an account's status changes are POSTed to
-- (signed as the Standard Webhooks specification says), one delivery per
-- endpoint and change, and every attempt at it. Written by control only: the
-- API manages endpoints and replays, control's webhook worker the rest.

CREATE TABLE endpoints (
    id                        uuid PRIMARY KEY,
    account_id                uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url                       text NOT NULL,
    -- Event types (message.sent, ..., inbound.received); empty: all.
    event_types               text[] NOT NULL DEFAULT '{}',
    description               text NOT NULL DEFAULT '',
    -- The signing key (the base64 after `whsec_`), sealed with the encryption key.
    secret_sealed             bytea NOT NULL,
    -- The key before the last rotation, still signing until it expires.
    previous_secret_sealed    bytea,
    previous_secret_expires_at timestamptz,
    enabled                   boolean NOT NULL DEFAULT true,
    disabled_reason           text NOT NULL DEFAULT '',
    -- When the first of the current run of failed attempts happened; NULL
    -- once one succeeds. An endpoint failing for longer than the worker's
    -- disable_after is disabled.
    failing_since             timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_account ON endpoints (account_id);

CREATE TABLE endpoint_deliveries (
    -- The `webhook-id`: the status change's id (`sts_…`), so a change is
    -- delivered once per endpoint whatever redelivers it.
    id              text NOT NULL,
    endpoint_id     uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    account_id      uuid NOT NULL,
    event_type      text NOT NULL,
    -- The JSON body, exactly as signed and sent.
    payload         text NOT NULL,
    -- pending | succeeded | failed
    state           text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    -- Due time of the next attempt; while an attempt runs, pushed past its
    -- timeout (a worker that dies mid-attempt leaves it due again then).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, id)
);
-- The worker's scan: pending deliveries by due time.
CREATE INDEX endpoint_deliveries_due ON endpoint_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX endpoint_deliveries_endpoint_created
    ON endpoint_deliveries (endpoint_id, created_at DESC);

CREATE TABLE endpoint_attempts (
    endpoint_id  uuid NOT NULL,
    delivery_id  text NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    -- 0: no HTTP answer (refused, timed out, blocked by the SSRF guard).
    status_code  integer NOT NULL,
    -- The first KiB of the answer's body, or why there was none.
    response     text NOT NULL,
    latency_ms   integer NOT NULL,
    FOREIGN KEY (endpoint_id, delivery_id)
        REFERENCES endpoint_deliveries (endpoint_id, id) ON DELETE CASCADE
);
CREATE INDEX endpoint_attempts_delivery
    ON endpoint_attempts (endpoint_id, delivery_id, attempted_at);
