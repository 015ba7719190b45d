-- A pipeline's default version, as KFP's v1beta1 API sets it
-- (`POST /pipelines/{id}/default_version/{version_id}`). NULL: the newest version is the
-- default. Uploading a new version makes it the default again (clears this), as in KFP v1; a
-- deleted version stops being the default.
ALTER TABLE pipelines ADD COLUMN default_version_id TEXT
    REFERENCES pipeline_versions (pipeline_version_id) ON DELETE SET NULL;
