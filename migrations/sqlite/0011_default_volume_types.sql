-- Per-project default volume types (Cinder 3.62, `/default-types`): a volume created in the
-- project without a type gets this one instead of __DEFAULT__. A type that is some project's
-- default cannot be deleted (the delete checks this table).
-- Keep in step with the other engine's directory.
CREATE TABLE default_volume_types (
    project_id TEXT PRIMARY KEY,
    volume_type_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE INDEX default_volume_types_type_idx ON default_volume_types (volume_type_id);
