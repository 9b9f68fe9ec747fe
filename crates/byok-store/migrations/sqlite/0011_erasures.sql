-- Erasures not yet proven: wrapped keys deleted (destruction, shredding, rekey) whose pages may
-- survive in the write-ahead log until a checkpoint completes. Removed once proven.
CREATE TABLE erasures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    what TEXT NOT NULL,             -- destroyed | shredded | rekeyed
    xid BIGINT NOT NULL,            -- 0: SQLite has no snapshots outliving the log
    created_at BIGINT NOT NULL
);
