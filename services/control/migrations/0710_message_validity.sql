-- Message validity: how long after its due time a job may still go out. A job
-- carries its deadline on the bus (SmsJob.expires_at_ms); the sender records a
-- job it reaches later as messages.status = 'expired' (a new final value, with
-- the reason in `error`) and never sends it.
--
-- Both texts are durations as `delay` is written ("2h"); empty means "not set":
-- a rule without one takes its account's default, an account without one the
-- built-in default (one hour, foco_rule_engine::DEFAULT_VALID_FOR).
ALTER TABLE rules
    ADD COLUMN valid_for text NOT NULL DEFAULT '';
ALTER TABLE accounts
    ADD COLUMN default_valid_for text NOT NULL DEFAULT '';
