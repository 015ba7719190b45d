-- Pipelines, versions and experiments as the API lists them: indexes for the default order
-- (newest first) and the usual sort keys, and the `tags` of pipelines and versions.
-- Conventions as in 0001_initial.sql.

CREATE INDEX pipelines_by_created_at ON pipelines (created_at, pipeline_id);
CREATE INDEX pipelines_by_display_name ON pipelines (display_name, pipeline_id);
CREATE INDEX experiments_by_created_at ON experiments (created_at, experiment_id);
CREATE INDEX experiments_by_display_name ON experiments (display_name, experiment_id);

-- A JSON object of string values (`tags` of the API).
ALTER TABLE pipelines ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE pipeline_versions ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
