-- Append-only, hash-chained: each entry's hash covers the previous entry's hash.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    tenant_id TEXT,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,             -- key_use | transition | ticket | onboarding
    reason TEXT NOT NULL,           -- data | probe | restore | onboard | …
    detail TEXT NOT NULL,           -- JSON
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);
