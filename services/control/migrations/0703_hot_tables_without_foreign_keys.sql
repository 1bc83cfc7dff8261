-- The tables written once or more per event or per SMS carry no foreign keys.
--
-- Each foreign key is checked by a trigger per written row, which looks the
-- parent row up and locks it (FOR KEY SHARE). Under load that was a third of
-- PostgreSQL's CPU (profiled at 3,000 SMS/s: 8 % of the machine in
-- AfterTriggerEndQuery, most of it planning the checks), and every event and
-- SMS of an account locked the same `accounts` row, from many transactions at
-- once, which Postgres records as multixacts.
--
-- What the keys guarded is guarded where the rows are written: the services
-- write these rows only for accounts, messages and jobs they have just read or
-- written (a provider id is inserted by the same statement that updates its
-- message), and Foco deletes no account or message. Whatever deletes an
-- account must also delete its rows from these tables.
DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT conrelid::regclass AS hot_table, conname
        FROM pg_constraint
        WHERE contype = 'f'
          AND conrelid IN ('messages'::regclass, 'provider_message_ids'::regclass,
                           'message_parts'::regclass, 'seen_events'::regclass,
                           'event_reports'::regclass, 'scheduled_jobs'::regclass,
                           'cancel_marks'::regclass, 'recipient_sends'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.hot_table, fk.conname);
    END LOOP;
END
$$;
