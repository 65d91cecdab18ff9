-- A placement's capacity check sums the sizes of a pool's live volumes
-- (`SUM(size) WHERE host = $1 AND NOT deleted AND id <> $3`, db/placement.rs) on the writer,
-- inside the placing statement. With only (host, status) indexed every matching row was read
-- from the table; this index holds everything the sum reads. Python's sqlite3 on one pool:
-- 1000 volumes 169 → 119 µs, 10 000 volumes 1.73 → 0.64 ms per check; inserts unchanged
-- within noise.
-- Keep in step with the other engine's directory.
CREATE INDEX volumes_host_size_idx ON volumes (host, deleted, size, id);
