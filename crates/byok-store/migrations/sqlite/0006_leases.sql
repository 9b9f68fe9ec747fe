-- One node on SQLite: it is always the leader. The table keeps the two schemas alike.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    valid_until BIGINT NOT NULL
);
