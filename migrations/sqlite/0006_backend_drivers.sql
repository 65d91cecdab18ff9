-- The driver each volume backend runs (driver hot swap). Keep in step with ../postgres/.

-- Activation history per backend (`host@backend`); the newest row of a backend is the driver
-- it serves, and a restart loads it. component_sha256 NULL = the driver configured in
-- `backends.NAME` (what a rollback past the first swap returns to). manifest NULL = the
-- configured exec manifest.
CREATE TABLE backend_drivers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    backend TEXT NOT NULL,
    component_sha256 TEXT REFERENCES plugin_components (sha256),
    manifest TEXT,
    driver_version TEXT NOT NULL,
    activated_at TEXT NOT NULL
);

CREATE INDEX backend_drivers_by_backend ON backend_drivers (backend, id);
