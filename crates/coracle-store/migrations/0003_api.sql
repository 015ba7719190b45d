-- What `coracle server` keeps for the KFP REST API: pipelines and their versions, experiments,
-- recurring runs, and the API fields of runs. Conventions as in 0001_initial.sql.

CREATE TABLE pipelines (
    pipeline_id  TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    namespace    TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE pipeline_versions (
    pipeline_version_id TEXT NOT NULL PRIMARY KEY,
    pipeline_id         TEXT NOT NULL REFERENCES pipelines (pipeline_id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    display_name        TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    code_source_url     TEXT NOT NULL DEFAULT '',
    package_url         TEXT NOT NULL DEFAULT '',
    created_at          TEXT NOT NULL,
    UNIQUE (pipeline_id, name)
);

CREATE INDEX pipeline_versions_by_pipeline ON pipeline_versions (pipeline_id, created_at);

-- Kept apart so that listing versions never reads a spec (see run_specs).
CREATE TABLE pipeline_version_specs (
    pipeline_version_id TEXT NOT NULL PRIMARY KEY
        REFERENCES pipeline_versions (pipeline_version_id) ON DELETE CASCADE,
    pipeline_spec       TEXT NOT NULL
);

CREATE TABLE experiments (
    experiment_id       TEXT NOT NULL PRIMARY KEY,
    display_name        TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    namespace           TEXT NOT NULL DEFAULT '',
    storage_state       TEXT NOT NULL DEFAULT 'AVAILABLE'
        CHECK (storage_state IN ('AVAILABLE', 'ARCHIVED')),
    created_at          TEXT NOT NULL,
    last_run_created_at TEXT,
    UNIQUE (namespace, display_name)
);

-- Runs made through the API carry these; runs of `coracle run` keep the defaults.
ALTER TABLE runs ADD COLUMN experiment_id TEXT;
ALTER TABLE runs ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN storage_state TEXT NOT NULL DEFAULT 'AVAILABLE'
    CHECK (storage_state IN ('AVAILABLE', 'ARCHIVED'));
ALTER TABLE runs ADD COLUMN namespace TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN pipeline_id TEXT;
ALTER TABLE runs ADD COLUMN pipeline_version_id TEXT;
ALTER TABLE runs ADD COLUMN recurring_run_id TEXT;
ALTER TABLE runs ADD COLUMN service_account TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN scheduled_at TEXT;
-- Who drives the run: 'cli' (a `coracle run` process) or 'server' (a `coracle server`, which
-- resumes its unfinished runs when it starts again).
ALTER TABLE runs ADD COLUMN driver TEXT NOT NULL DEFAULT 'cli';

-- Every state a run has been in, in order (`state_history` of the API).
CREATE TABLE run_state_history (
    seq    INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    state  TEXT NOT NULL,
    at     TEXT NOT NULL
);

CREATE INDEX run_state_history_by_run ON run_state_history (run_id, seq);

CREATE TABLE recurring_runs (
    recurring_run_id    TEXT NOT NULL PRIMARY KEY,
    display_name        TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    namespace           TEXT NOT NULL DEFAULT '',
    experiment_id       TEXT,
    -- Exactly one of a spec or a pipeline version reference.
    pipeline_spec       TEXT,
    pipeline_id         TEXT,
    pipeline_version_id TEXT,
    -- `runtime_config` object of the API ({parameters, pipeline_root}).
    runtime_config      TEXT NOT NULL DEFAULT '{}',
    service_account     TEXT NOT NULL DEFAULT '',
    -- `trigger` object of the API ({cron_schedule} or {periodic_schedule}).
    trigger_spec        TEXT NOT NULL,
    max_concurrency     INTEGER NOT NULL DEFAULT 1,
    no_catchup          INTEGER NOT NULL DEFAULT 0,
    mode                TEXT NOT NULL DEFAULT 'ENABLE' CHECK (mode IN ('ENABLE', 'DISABLE')),
    status              TEXT NOT NULL DEFAULT 'ENABLED',
    error               TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    -- The last time the schedule fired (a run was due); the next one is computed from it.
    last_fired_at       TEXT
);
