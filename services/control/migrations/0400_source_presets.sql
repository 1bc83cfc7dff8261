-- Sender presets and per-source limits (issue: ingress presets). A source
-- remembers the preset it was configured with, how to read bodies that come
-- without a usable Content-Type, and how many webhooks a second it may send.
-- The preset's signature scheme lives in `verification` as before.

ALTER TABLE sources
    ADD COLUMN preset                text    NOT NULL DEFAULT '',
    -- '' (refuse unknown content types), 'json' or 'form'.
    ADD COLUMN content_type          text    NOT NULL DEFAULT '',
    -- Per ingress replica; 0: no limit.
    ADD COLUMN rate_limit_per_second integer NOT NULL DEFAULT 0,
    ADD COLUMN rate_limit_burst      integer NOT NULL DEFAULT 0;
