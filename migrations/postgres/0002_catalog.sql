-- The catalog (PostgreSQL): the default volume type, unique live names, QoS specs. Keep in step
-- with ../sqlite/0002_catalog.sql.

-- Like Cinder, every deployment has a volume type named __DEFAULT__; volumes created without
-- a type get it, and it cannot be deleted.
INSERT INTO volume_types (id, name, description, is_public, created_at, deleted)
VALUES ('6cc2462a-3926-4fcd-ba0d-f9e28335ab77', '__DEFAULT__', 'Default Volume Type', TRUE,
        '1970-01-01T00:00:00.000000', FALSE);

-- Names are unique among types that are not deleted: two API processes creating the same
-- name race on this index, not on a read-then-write.
CREATE UNIQUE INDEX volume_types_live_name_uidx ON volume_types (name) WHERE NOT deleted;

-- QoS specs: name and consumer on the parent row, the key/value specs as child rows.
CREATE TABLE quality_of_service_specs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    consumer TEXT NOT NULL DEFAULT 'back-end',
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE UNIQUE INDEX quality_of_service_specs_live_name_uidx
    ON quality_of_service_specs (name) WHERE NOT deleted;

CREATE TABLE quality_of_service_specs_keys (
    qos_specs_id TEXT NOT NULL REFERENCES quality_of_service_specs (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (qos_specs_id, key)
);

CREATE INDEX volume_types_qos_idx ON volume_types (qos_specs_id);
CREATE INDEX reservations_project_idx ON reservations (project_id, expire);
