-- Volume transfers between projects (`/os-volume-transfer`, `/volume-transfers`). The auth key
-- is never stored: only sha256(salt || key). Keep in step with ../sqlite/.
CREATE TABLE transfers (
    id TEXT PRIMARY KEY,
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    display_name TEXT,
    salt TEXT NOT NULL,
    crypt_hash TEXT NOT NULL,
    source_project_id TEXT NOT NULL,
    destination_project_id TEXT,
    accepted BOOLEAN NOT NULL DEFAULT FALSE,
    no_snapshots BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TEXT
);
CREATE INDEX transfers_volume_idx ON transfers (volume_id);
