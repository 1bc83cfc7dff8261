-- Dead letters nobody has retried yet, in age order: control's backlog gauges
-- (foco_dead_letters, foco_dead_letters_oldest_age_seconds) count them and read
-- the oldest from this index alone, however many retried ones the table keeps.
-- (scheduled_jobs_due already covers the pending and overdue scheduled jobs.)
CREATE INDEX dead_letters_waiting ON dead_letters (dead_lettered_at) WHERE retried_at IS NULL;
