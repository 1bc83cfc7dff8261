-- API keys can expire, and listings show a short, non-secret prefix of each key so
-- an operator can tell them apart. Keys created before this have no prefix.
ALTER TABLE api_keys
    ADD COLUMN key_prefix text,
    ADD COLUMN expires_at timestamptz;

CREATE INDEX api_keys_by_account ON api_keys (account_id, created_at);
