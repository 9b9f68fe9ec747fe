-- Where the kept audit log starts after older entries were exported and pruned: the last pruned
-- entry's sequence number and hash, so that the chain still verifies from there.
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    pruned_at BIGINT NOT NULL
);
