-- Initial schema of the Coracle metadata store.
--
-- Conventions:
-- * Timestamps are TEXT in RFC 3339 with exactly nine fractional digits and a `Z` suffix
--   (e.g. 2024-05-01T12:00:00.000000000Z), so text order is time order.
-- * JSON values are TEXT holding compact JSON (`null` rather than SQL NULL where the record
--   type holds a `serde_json::Value`).
-- * States are the upper-case KFP names.

-- One row per run. The compiled pipeline spec, which can be large, lives in `run_specs` so
-- that listing runs never reads it (SQLite would otherwise walk its overflow pages to reach
-- any column stored after it).
CREATE TABLE runs (
    run_id        TEXT NOT NULL PRIMARY KEY,
    display_name  TEXT NOT NULL,
    pipeline_name TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    pipeline_root TEXT NOT NULL,
    state         TEXT NOT NULL
        CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELING', 'CANCELED')),
    error         TEXT,
    outputs       TEXT NOT NULL DEFAULT 'null',
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT
);

-- Newest-first listing (scanned backwards) and keyset pagination on (created_at, run_id).
CREATE INDEX runs_by_created_at ON runs (created_at, run_id);

-- Runs a restarted process must reconcile. Partial, so it stays as small as the set of live runs.
CREATE INDEX runs_unfinished ON runs (created_at, run_id)
    WHERE state IN ('PENDING', 'RUNNING', 'CANCELING');

CREATE TABLE run_specs (
    run_id        TEXT NOT NULL PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    pipeline_spec TEXT NOT NULL
);

-- One row per attempt of a task. `seq` aliases the rowid: it records insertion order and, being
-- declared, survives VACUUM. Upserts use ON CONFLICT DO UPDATE, which keeps `seq`.
CREATE TABLE tasks (
    seq            INTEGER PRIMARY KEY,
    run_id         TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    task_id        TEXT NOT NULL,
    attempt        INTEGER NOT NULL CHECK (attempt >= 0),
    name           TEXT NOT NULL,
    component      TEXT NOT NULL,
    parent_task_id TEXT,
    state          TEXT NOT NULL
        CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CACHED', 'CANCELED')),
    inputs         TEXT NOT NULL,
    outputs        TEXT NOT NULL,
    exit_code      INTEGER,
    error          TEXT,
    log_path       TEXT,
    work_dir       TEXT,
    started_at     TEXT,
    finished_at    TEXT,
    UNIQUE (run_id, task_id, attempt)
);

CREATE TABLE artifacts (
    seq              INTEGER PRIMARY KEY,
    artifact_id      TEXT NOT NULL UNIQUE,
    run_id           TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    producer_task_id TEXT NOT NULL,
    output_key       TEXT NOT NULL,
    name             TEXT NOT NULL,
    uri              TEXT NOT NULL,
    schema_title     TEXT NOT NULL,
    schema_version   TEXT NOT NULL,
    metadata         TEXT NOT NULL,
    created_at       TEXT NOT NULL
);

CREATE INDEX artifacts_by_run ON artifacts (run_id, producer_task_id, output_key);
