-- Generic volume groups (3.13+), group types with their specs (3.11), group snapshots (3.14)
-- and volume type encryption (`/types/{id}/encryption`). Keep in step with ../sqlite/.
-- `volumes.group_id` and `snapshots.group_snapshot_id` exist since 0001.

CREATE TABLE group_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    is_public BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE UNIQUE INDEX group_types_live_name_uidx ON group_types (name) WHERE NOT deleted;

CREATE TABLE group_type_specs (
    group_type_id TEXT NOT NULL REFERENCES group_types (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (group_type_id, key)
);

CREATE TABLE group_type_projects (
    group_type_id TEXT NOT NULL REFERENCES group_types (id),
    project_id TEXT NOT NULL,
    PRIMARY KEY (group_type_id, project_id)
);

-- Groups (`volume_groups`: GROUPS is an SQL keyword). `host` is the backend (`host@backend`) every volume of the group lives on.
CREATE TABLE volume_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT,
    description TEXT,
    status TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    host TEXT,
    group_type_id TEXT NOT NULL REFERENCES group_types (id),
    group_snapshot_id TEXT,
    source_group_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE INDEX volume_groups_project_idx ON volume_groups (project_id, deleted, created_at);

CREATE TABLE group_volume_types (
    group_id TEXT NOT NULL REFERENCES volume_groups (id),
    volume_type_id TEXT NOT NULL REFERENCES volume_types (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (group_id, volume_type_id)
);
CREATE INDEX group_volume_types_type_idx ON group_volume_types (volume_type_id);

CREATE TABLE group_snapshots (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES volume_groups (id),
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT,
    description TEXT,
    status TEXT NOT NULL,
    group_type_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE INDEX group_snapshots_group_idx ON group_snapshots (group_id);
CREATE INDEX volumes_group_idx ON volumes (group_id);
CREATE INDEX snapshots_group_snapshot_idx ON snapshots (group_snapshot_id);

-- One live encryption spec per volume type (Cinder's `encryption` table).
CREATE TABLE volume_type_encryption (
    encryption_id TEXT PRIMARY KEY,
    volume_type_id TEXT NOT NULL REFERENCES volume_types (id),
    provider TEXT NOT NULL,
    cipher TEXT,
    key_size BIGINT,
    control_location TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE UNIQUE INDEX volume_type_encryption_live_uidx
    ON volume_type_encryption (volume_type_id) WHERE NOT deleted;
