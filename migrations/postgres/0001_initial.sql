-- Kiln initial schema (PostgreSQL). Timestamps are UTC text 'YYYY-MM-DDTHH:MM:SS.ffffff', which
-- sorts and compares correctly as text on both engines. Keep in step with ../sqlite/.

CREATE TABLE services (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    "binary" TEXT NOT NULL,
    topic TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    report_count BIGINT NOT NULL DEFAULT 0,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_reason TEXT,
    frozen BOOLEAN NOT NULL DEFAULT FALSE,
    cluster_name TEXT,
    rpc_current_version TEXT,
    object_current_version TEXT,
    replication_status TEXT NOT NULL DEFAULT 'not-capable',
    active_backend_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    modified_at TEXT,
    UNIQUE (host, "binary")
);

CREATE TABLE volume_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    is_public BOOLEAN NOT NULL DEFAULT TRUE,
    qos_specs_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE INDEX volume_types_name_idx ON volume_types (name);

CREATE TABLE volume_type_extra_specs (
    volume_type_id TEXT NOT NULL REFERENCES volume_types (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (volume_type_id, key)
);

CREATE TABLE volume_type_projects (
    volume_type_id TEXT NOT NULL REFERENCES volume_types (id),
    project_id TEXT NOT NULL,
    PRIMARY KEY (volume_type_id, project_id)
);

CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    display_name TEXT,
    display_description TEXT,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    attach_status TEXT NOT NULL DEFAULT 'detached',
    migration_status TEXT,
    previous_status TEXT,
    availability_zone TEXT NOT NULL,
    host TEXT,
    cluster_name TEXT,
    volume_type_id TEXT REFERENCES volume_types (id),
    snapshot_id TEXT,
    source_volid TEXT,
    group_id TEXT,
    bootable BOOLEAN NOT NULL DEFAULT FALSE,
    multiattach BOOLEAN NOT NULL DEFAULT FALSE,
    encrypted BOOLEAN NOT NULL DEFAULT FALSE,
    replication_status TEXT,
    provider_location TEXT,
    provider_auth TEXT,
    use_quota BOOLEAN NOT NULL DEFAULT TRUE,
    scheduled_at TEXT,
    launched_at TEXT,
    terminated_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE INDEX volumes_project_idx ON volumes (project_id, deleted, created_at);
CREATE INDEX volumes_host_status_idx ON volumes (host, status);

CREATE TABLE volume_metadata (
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (volume_id, key)
);

CREATE TABLE volume_admin_metadata (
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (volume_id, key)
);

CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    display_name TEXT,
    display_description TEXT,
    status TEXT NOT NULL,
    progress TEXT,
    volume_size BIGINT NOT NULL,
    volume_type_id TEXT,
    provider_location TEXT,
    provider_id TEXT,
    group_snapshot_id TEXT,
    use_quota BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE INDEX snapshots_volume_idx ON snapshots (volume_id);
CREATE INDEX snapshots_project_idx ON snapshots (project_id, deleted, created_at);

CREATE TABLE snapshot_metadata (
    snapshot_id TEXT NOT NULL REFERENCES snapshots (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, key)
);

CREATE TABLE volume_attachment (
    id TEXT PRIMARY KEY,
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    instance_uuid TEXT,
    attached_host TEXT,
    mountpoint TEXT,
    attach_mode TEXT,
    attach_status TEXT NOT NULL,
    connector TEXT,
    connection_info TEXT,
    attach_time TEXT,
    detach_time TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE INDEX volume_attachment_volume_idx ON volume_attachment (volume_id);

-- Per-project limits (absent row = the quota class / default).
CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE quota_classes (
    class_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    PRIMARY KEY (class_name, resource)
);

CREATE TABLE quota_usages (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    in_use BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    delta BIGINT NOT NULL,
    expire TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX reservations_expire_idx ON reservations (expire);

-- User-visible messages (the /messages API): what failed, and why.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    request_id TEXT,
    resource_type TEXT,
    resource_uuid TEXT,
    event_id TEXT NOT NULL,
    message_level TEXT NOT NULL,
    action_id TEXT,
    detail_id TEXT,
    detail TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX messages_project_idx ON messages (project_id, created_at);
