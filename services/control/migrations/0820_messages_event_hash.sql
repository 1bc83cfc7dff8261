-- A message is looked up by its event only to list an event's messages
-- (`ListMessages` with an event id, `foco events show`): an equality on the
-- event id, within one account. Event ids are digests or the sending
-- platform's own ids, so each claim put its entry at a random place in the
-- B-tree on (account_id, event_id), a descent that compared long strings at
-- every level, and split its pages as they filled. A hash index on the event
-- id answers the same lookup (the account is checked on the rows it finds)
-- from the bucket the id hashes to, and stores four bytes of hash per row
-- instead of the id.
DROP INDEX messages_account_event;
CREATE INDEX messages_event ON messages USING hash (event_id);
