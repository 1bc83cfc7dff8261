-- Rules looks pending jobs up by correlation key (cancellations, replacement,
-- "keep the first") once per keyed event. Two indexes could serve those
-- statements: the key index and the account index (account_id, state, due_at),
-- which matches their `account_id = … AND state = 'pending'` too. The planner
-- cannot tell them apart while `scheduled_jobs` has no statistics (a fresh
-- database: its first minute of delayed jobs), nor when statistics taken in a
-- quiet moment say no job is pending, and then it picked the account index and
-- read every pending job of the account for each event (about 150 to 2,500
-- pages a statement at 1,000 delayed jobs a second).
--
-- Pending jobs are listed through the key index (every pending job of the
-- account, sorted) or the due-time index; the account index keeps only the
-- jobs that are done, where listings by state need it and the key statements
-- (always `state = 'pending'`) cannot use it.
DROP INDEX scheduled_jobs_account;
CREATE INDEX scheduled_jobs_account_done ON scheduled_jobs (account_id, state, due_at)
    WHERE state <> 'pending';
