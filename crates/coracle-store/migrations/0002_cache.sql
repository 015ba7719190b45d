-- The step cache: a task's outputs under the key of everything that determines them (see
-- coracle-orchestrator). One entry per key, the newest; entries go with the run that made
-- them, since their artifacts live under that run.
CREATE TABLE cache_entries (
    cache_key  TEXT NOT NULL PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    task_id    TEXT NOT NULL,
    outputs    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
