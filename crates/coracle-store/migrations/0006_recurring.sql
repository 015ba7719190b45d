-- Recurring runs as the API lists them and as the scheduler reads them. Conventions as in
-- 0001_initial.sql.

-- Listings newest first, all of them or one experiment's.
CREATE INDEX recurring_runs_by_created_at ON recurring_runs (created_at, recurring_run_id);
CREATE INDEX recurring_runs_by_experiment
    ON recurring_runs (experiment_id, created_at, recurring_run_id);

-- The newest due time a schedule made a run for: one seek per schedule, however many runs it
-- has made.
CREATE INDEX runs_by_recurring_run_scheduled_at ON runs (recurring_run_id, scheduled_at);

-- A schedule's runs that have not ended, for `max_concurrency`. Partial, so it stays as small
-- as the set of live scheduled runs.
CREATE INDEX runs_unfinished_by_recurring_run ON runs (recurring_run_id)
    WHERE recurring_run_id IS NOT NULL AND state IN ('PENDING', 'RUNNING', 'CANCELING');
