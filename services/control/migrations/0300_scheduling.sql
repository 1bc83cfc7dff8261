-- Timed follow-ups (issue: rules engine). Rules gain timing, correlation,
-- cancellation, encoding and cap settings; delayed jobs wait in scheduled_jobs
-- until the rules service's scheduler publishes them.

ALTER TABLE rules
    ADD COLUMN delay_text     text    NOT NULL DEFAULT '',
    ADD COLUMN send_at        text    NOT NULL DEFAULT '',
    ADD COLUMN correlation_key text   NOT NULL DEFAULT '',
    ADD COLUMN cancel_when    text    NOT NULL DEFAULT '',
    ADD COLUMN cancel_key     text    NOT NULL DEFAULT '',
    ADD COLUMN on_repeat      text    NOT NULL DEFAULT 'replace',
    ADD COLUMN encoding       text    NOT NULL DEFAULT 'unicode',
    ADD COLUMN max_segments   integer NOT NULL DEFAULT 0,
    ADD COLUMN cap_count      integer NOT NULL DEFAULT 0,
    ADD COLUMN cap_window     text    NOT NULL DEFAULT '';

CREATE INDEX rules_account_cancel ON rules (account_id) WHERE cancel_when <> '' AND enabled;

ALTER TABLE accounts ADD COLUMN daily_sms_cap integer NOT NULL DEFAULT 0;

-- A delayed SMS job. `job` is the encoded foco.v1.SmsJob published when due.
-- state: pending → published | cancelled. The scheduler claims due rows with
-- FOR UPDATE SKIP LOCKED, so any number of rules replicas publish each job once.
CREATE TABLE scheduled_jobs (
    job_id          text PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    rule_id         uuid NOT NULL,
    event_id        text NOT NULL,
    correlation_key text NOT NULL DEFAULT '',
    recipient       text NOT NULL,
    body            text NOT NULL,
    due_at          timestamptz NOT NULL,
    -- When ingress received the triggering event: a cancelling event cancels
    -- only jobs whose trigger it followed.
    trigger_received_at timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending',
    job             bytea NOT NULL,
    cancel_reason   text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX scheduled_jobs_due ON scheduled_jobs (due_at) WHERE state = 'pending';
CREATE INDEX scheduled_jobs_key ON scheduled_jobs (account_id, rule_id, correlation_key) WHERE state = 'pending';
CREATE INDEX scheduled_jobs_account ON scheduled_jobs (account_id, state, due_at);

-- Cancellations remembered for a while: events are evaluated concurrently, so a
-- purchase can be processed before the sign-up that preceded it. A delayed job
-- whose trigger was received before a mark's event is cancelled on arrival.
CREATE TABLE cancel_marks (
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    rule_id         uuid NOT NULL,
    correlation_key text NOT NULL,
    event_id        text NOT NULL,
    received_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, rule_id, correlation_key, event_id)
);
CREATE INDEX cancel_marks_age ON cancel_marks (created_at);

-- What happened to an event, rule by rule, when it was not simply "sent at once".
CREATE TABLE event_reports (
    id          bigserial PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id    text NOT NULL,
    rule_id     text NOT NULL DEFAULT '',
    rule_name   text NOT NULL DEFAULT '',
    kind        text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX event_reports_event ON event_reports (account_id, event_id);
CREATE INDEX event_reports_recent ON event_reports (account_id, created_at DESC);

-- One row per job a rule produced for a recipient: frequency caps per rule and
-- recipient, and the account's daily cap, count these.
CREATE TABLE recipient_sends (
    job_id      text PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    rule_id     uuid NOT NULL,
    recipient   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX recipient_sends_rule ON recipient_sends (rule_id, recipient, created_at);
CREATE INDEX recipient_sends_account ON recipient_sends (account_id, created_at);

-- A redelivered event writes the same reports again; keep one of each.
CREATE UNIQUE INDEX event_reports_once ON event_reports (account_id, event_id, rule_id, kind, md5(detail));

-- Events whose sender supplied its own id, kept for long-window deduplication:
-- JetStream's duplicate window is minutes, senders retry for days (Stripe: 3).
-- The stream sequence tells a redelivery of the same stored event (process it
-- again, idempotently) from a second copy published later (drop it).
CREATE TABLE seen_events (
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    stream_sequence bigint NOT NULL,
    seen_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, event_id)
);
CREATE INDEX seen_events_age ON seen_events (seen_at);
