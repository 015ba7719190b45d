-- Runs as the API lists and tracks them: indexes for the filters and sorts of `GET /runs`,
-- and every change of a run's state recorded in run_state_history by triggers, so that no
-- writer (a `coracle run` process, a server, `coracle runs terminate`) can forget it.
-- Conventions as in 0001_initial.sql.

-- Filtered listings, newest first: each walks one index range in order and stops after a page.
-- The experiment index also holds the storage state and state, so that an experiment's page
-- filtered on them (what a runs table shows) and its count read no table rows.
CREATE INDEX runs_by_experiment ON runs (experiment_id, created_at, run_id, storage_state, state);
CREATE INDEX runs_by_state ON runs (state, created_at, run_id);
CREATE INDEX runs_by_storage_state ON runs (storage_state, created_at, run_id);
CREATE INDEX runs_by_recurring_run ON runs (recurring_run_id, created_at, run_id);
-- The other sort keys of the API.
CREATE INDEX runs_by_display_name ON runs (display_name, run_id);
CREATE INDEX runs_by_finished_at ON runs (finished_at, run_id);

-- The error of a FAILED (or CANCELED) state, as the API's `state_history[].error` shows it.
ALTER TABLE run_state_history ADD COLUMN error TEXT;

-- A run's first state, at its creation time.
CREATE TRIGGER runs_state_history_on_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO run_state_history (run_id, state, at, error)
    VALUES (new.run_id, new.state, new.created_at, new.error);
END;

-- Each later change. The time is the one the writer recorded for it (`started_at` when the run
-- first runs, `finished_at` when it ends), else the database clock (milliseconds, padded to the
-- fixed-width format).
CREATE TRIGGER runs_state_history_on_update AFTER UPDATE OF state ON runs
WHEN new.state IS NOT old.state
BEGIN
    INSERT INTO run_state_history (run_id, state, at, error)
    VALUES (
        new.run_id,
        new.state,
        CASE
            WHEN new.finished_at IS NOT NULL AND old.finished_at IS NULL THEN new.finished_at
            WHEN new.started_at IS NOT NULL AND old.started_at IS NULL THEN new.started_at
            ELSE strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000000Z'
        END,
        new.error
    );
END;

-- Runs recorded before this migration get one entry: the state they are in.
INSERT INTO run_state_history (run_id, state, at, error)
SELECT run_id, state, coalesce(finished_at, started_at, created_at), error FROM runs
WHERE run_id NOT IN (SELECT run_id FROM run_state_history);
