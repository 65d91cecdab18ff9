-- Volume transfers between projects (`/os-volume-transfer`, `/volume-transfers`). The auth key
-- is never stored: only sha256(salt || key). Keep in step with ../postgres/.
CREATE TABLE transfers (
    id TEXT PRIMARY KEY,
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    display_name TEXT,
    salt TEXT NOT NULL,
    crypt_hash TEXT NOT NULL,
    source_project_id TEXT NOT NULL,
    destination_project_id TEXT,
    accepted INTEGER NOT NULL DEFAULT 0,
    no_snapshots INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT
);
CREATE INDEX transfers_volume_idx ON transfers (volume_id);
