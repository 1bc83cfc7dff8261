-- Event ids kept for long-window deduplication are only ever looked up by age
-- when rules' scheduler prunes them (`seen_at < now() - 7 days`), and rows are
-- appended in time order. A BRIN index answers that delete from one summary
-- per range of pages, and an insert into a range not yet summarized touches no
-- index page at all; the B-tree took a leaf entry, and its record in the
-- write-ahead log, for every deduplicated event.
DROP INDEX seen_events_age;
CREATE INDEX seen_events_age ON seen_events USING brin (seen_at);
