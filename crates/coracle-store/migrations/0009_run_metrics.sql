-- The scalar metrics of each run, so that run lists can sort by one (`sort_by=metric:accuracy`)
-- through an index instead of reading every run's artifacts. Conventions as in 0001_initial.sql.
--
-- A run's metrics are the numeric entries (JSON integers and reals; not booleans, strings or
-- nested values) of the metadata of its `system.Metrics` artifacts. When several of a run's
-- artifacts hold the same name, the artifact recorded last (highest `artifacts.seq`) gives the
-- value, as the runs table shows it. The table is derived: triggers on `artifacts` keep it
-- current and the run's deletion removes its rows (ON DELETE CASCADE).
CREATE TABLE run_metrics (
    run_id       TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    value        REAL NOT NULL,
    -- `artifacts.seq` of the artifact the value comes from.
    artifact_seq INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- Runs ordered by one metric: a sorted page walks one range of this index, in either direction.
CREATE INDEX run_metrics_by_name ON run_metrics (name, value, run_id);

-- A new metrics artifact: each of its numeric entries replaces an older artifact's value of the
-- same name, never a newer one's. Metadata that is not a JSON object contributes nothing.
CREATE TRIGGER artifacts_run_metrics_on_insert AFTER INSERT ON artifacts
WHEN new.schema_title = 'system.Metrics'
BEGIN
    INSERT INTO run_metrics (run_id, name, value, artifact_seq)
    SELECT new.run_id, j.key, j.value, new.seq
    FROM json_each(CASE
        WHEN NOT json_valid(new.metadata) THEN '{}'
        WHEN json_type(new.metadata) = 'object' THEN new.metadata
        ELSE '{}'
    END) AS j
    WHERE j.type IN ('integer', 'real')
    ON CONFLICT (run_id, name) DO UPDATE SET
        value = excluded.value,
        artifact_seq = excluded.artifact_seq
    WHERE excluded.artifact_seq >= run_metrics.artifact_seq;
END;

-- A changed artifact (its metadata, its schema or its run): the metrics of the runs it belonged
-- to and belongs to are computed again from all their metrics artifacts. With `max(seq)`
-- SQLite takes the bare column `j.value` from the row of the newest artifact.
CREATE TRIGGER artifacts_run_metrics_on_update
AFTER UPDATE OF run_id, schema_title, metadata ON artifacts
BEGIN
    DELETE FROM run_metrics WHERE run_id IN (old.run_id, new.run_id);
    INSERT INTO run_metrics (run_id, name, value, artifact_seq)
    SELECT a.run_id, j.key, j.value, max(a.seq)
    FROM artifacts a, json_each(CASE
        WHEN NOT json_valid(a.metadata) THEN '{}'
        WHEN json_type(a.metadata) = 'object' THEN a.metadata
        ELSE '{}'
    END) AS j
    WHERE a.run_id IN (old.run_id, new.run_id)
      AND a.schema_title = 'system.Metrics'
      AND j.type IN ('integer', 'real')
    GROUP BY a.run_id, j.key;
END;

-- Artifacts recorded before this migration.
INSERT INTO run_metrics (run_id, name, value, artifact_seq)
SELECT a.run_id, j.key, j.value, max(a.seq)
FROM artifacts a, json_each(CASE
    WHEN NOT json_valid(a.metadata) THEN '{}'
    WHEN json_type(a.metadata) = 'object' THEN a.metadata
    ELSE '{}'
END) AS j
WHERE a.schema_title = 'system.Metrics'
  AND j.type IN ('integer', 'real')
GROUP BY a.run_id, j.key;
