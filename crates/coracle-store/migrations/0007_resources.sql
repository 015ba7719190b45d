-- Coracle's stand-ins for the cluster resources that kfp-kubernetes pipelines use: named volumes
-- (PersistentVolumeClaims), secrets and config maps. Conventions as in 0001_initial.sql.
-- Names are Kubernetes DNS-1123 subdomains and data keys Kubernetes config keys; the store
-- checks both before writing.

-- A volume's files live in `{home}/volumes/{name}`; the row says it exists and how it was asked
-- for. `created_by_run` is the run whose CreatePVC made it (NULL: made by hand); it is not a
-- foreign key, so a volume outlives the run that made it.
CREATE TABLE volumes (
    name           TEXT NOT NULL PRIMARY KEY,
    created_at     TEXT NOT NULL,
    created_by_run TEXT,
    size           TEXT,
    access_modes   TEXT NOT NULL DEFAULT '[]',
    storage_class  TEXT,
    annotations    TEXT NOT NULL DEFAULT '{}'
);

-- `data` is a JSON object: key → standard base64 of the value's bytes. Values are kept nowhere
-- else.
CREATE TABLE secrets (
    name       TEXT NOT NULL PRIMARY KEY,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- `data` is a JSON object: key → text value.
CREATE TABLE config_maps (
    name       TEXT NOT NULL PRIMARY KEY,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
