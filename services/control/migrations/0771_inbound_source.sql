-- Two-way SMS: the source (by name) that SMS an account receives become
-- events of, so its rules can answer them. Empty: none.

ALTER TABLE accounts ADD COLUMN inbound_source text NOT NULL DEFAULT '';
