-- API keys get scopes, a name and the time they were last used. Keys created
-- before scopes existed could do everything in their account: they keep that
-- (every account scope). Service keys (ingress, rules, sender) belong to no
-- account and hold only their lookups' scopes; `service` names whose key it is.
ALTER TABLE api_keys
    ALTER COLUMN account_id DROP NOT NULL,
    ADD COLUMN name text NOT NULL DEFAULT '',
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{send,trigger,read,manage}',
    ADD COLUMN service text,
    ADD COLUMN last_used_at timestamptz,
    ADD CONSTRAINT api_keys_account_or_service
        CHECK ((account_id IS NULL) = (service IS NOT NULL));

-- New keys always say their scopes.
ALTER TABLE api_keys ALTER COLUMN scopes DROP DEFAULT;

CREATE INDEX api_keys_of_services ON api_keys (created_at) WHERE account_id IS NULL;
