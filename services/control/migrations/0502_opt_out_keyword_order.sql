-- Inbound STOP/START keywords are applied in the order they were received, not
-- the order the sender happens to handle them: keywords are handled
-- concurrently and redelivered after failures, so an older START could
-- otherwise re-subscribe a number that a newer STOP opted out (or an older
-- STOP undo a newer START). The sender keeps, per number, the last keyword it
-- applied and when it was received, and applies a keyword only if it is newer.
-- Its own table, because a START deletes the `opt_outs` row and its time must
-- outlive that.
CREATE TABLE opt_out_keywords (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- E.164
    phone       text NOT NULL,
    -- stop | start
    keyword     text NOT NULL,
    -- When ingress received the inbound SMS carrying the keyword.
    received_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, phone)
);
