-- Foco schema. Owned by foco-control; other services read and write only the
-- tables their job needs (the sender: messages).

CREATE TABLE accounts (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    default_country text NOT NULL DEFAULT 'US',
    timezone        text NOT NULL DEFAULT 'UTC',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored only as SHA-256 hashes: keys are 256-bit random values, so
-- a slow password hash adds nothing.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_hash     bytea NOT NULL UNIQUE,
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE TABLE sources (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name             text NOT NULL,
    token            text NOT NULL UNIQUE,
    -- foco.v1.Verification as protobuf JSON-ish document: {"scheme": "...", ...}
    verification     jsonb NOT NULL,
    -- Signing secrets, AES-256-GCM encrypted (nonce || ciphertext), current first.
    secrets_encrypted bytea[] NOT NULL DEFAULT '{}',
    event_type_from  text NOT NULL DEFAULT '',
    event_id_from    text NOT NULL DEFAULT '',
    enabled          boolean NOT NULL DEFAULT true,
    max_body_bytes   integer NOT NULL DEFAULT 262144,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

CREATE TABLE rules (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    source_id   uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    name        text NOT NULL,
    condition   text NOT NULL DEFAULT '',
    recipients  text[] NOT NULL,
    body        text NOT NULL,
    provider    text NOT NULL DEFAULT '',
    sender_id   text NOT NULL DEFAULT '',
    priority    smallint NOT NULL DEFAULT 1,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_id, name)
);

CREATE TABLE provider_routes (
    id                    uuid PRIMARY KEY,
    account_id            uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    kind                  text NOT NULL,
    settings              jsonb NOT NULL DEFAULT '{}',
    -- JSON object of credentials, AES-256-GCM encrypted (nonce || ciphertext).
    credentials_encrypted bytea,
    credential_names      text[] NOT NULL DEFAULT '{}',
    is_default            boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

-- One row per SMS job. The sender inserts the row (claiming the job) before it
-- calls a provider; the unique job_id is what makes a redelivered job harmless.
CREATE TABLE messages (
    job_id              text PRIMARY KEY,
    account_id          uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id            text NOT NULL,
    source_id           text NOT NULL DEFAULT '',
    rule_id             text NOT NULL DEFAULT '',
    recipient           text NOT NULL,
    body                text NOT NULL,
    -- queued | sending | sent | failed | unknown | delivered | undelivered
    status              text NOT NULL,
    provider            text NOT NULL DEFAULT '',
    provider_message_id text NOT NULL DEFAULT '',
    attempts            integer NOT NULL DEFAULT 0,
    error               text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz
);

CREATE INDEX messages_account_created ON messages (account_id, created_at DESC);
CREATE INDEX messages_account_event ON messages (account_id, event_id);
