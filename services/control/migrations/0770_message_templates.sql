-- Message templates: named bodies an account keeps, rendered by SendMessage(s)
-- with the call's variables. Written by control only (the API); the rendering,
-- not the template, is what a message stores.

CREATE TABLE message_templates (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL,
    -- A minijinja template, checked when saved.
    body        text NOT NULL,
    -- '' (unicode) or 'gsm7'.
    encoding    text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);
