-- Scheduler plugin components and chain versions (hot swap). Keep in step with ../sqlite/.

-- Uploaded components, content-addressed: the sha256 of the bytes is the id.
CREATE TABLE plugin_components (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    created_at TEXT NOT NULL
);

-- Every chain definition ever created (JSON ChainSpec), by version.
CREATE TABLE scheduler_chains (
    version BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Activation history; the newest row is the active chain (rollback activates the one before).
CREATE TABLE scheduler_chain_activations (
    id BIGSERIAL PRIMARY KEY,
    version BIGINT NOT NULL REFERENCES scheduler_chains (version),
    activated_at TEXT NOT NULL
);
