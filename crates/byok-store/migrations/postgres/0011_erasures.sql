-- Erasures not yet proven: wrapped keys deleted (destruction, shredding, rekey) whose old row
-- versions may survive in the table's files until a rewrite that no older snapshot can stop.
-- Written in the deleting transaction with its id; removed once the erasure is proven.
CREATE TABLE erasures (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    what TEXT NOT NULL,             -- destroyed | shredded | rekeyed
    xid BIGINT NOT NULL,            -- txid_current() of the deleting transaction
    created_at BIGINT NOT NULL
);
