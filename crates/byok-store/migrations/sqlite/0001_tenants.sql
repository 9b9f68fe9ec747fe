CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    binding TEXT NOT NULL,          -- JSON TenantBinding
    state TEXT NOT NULL,            -- JSON TenantState
    state_name TEXT NOT NULL,       -- onboarding | active | revoked | destroyed, for queries
    deadline BIGINT,                -- unix seconds, while revoked
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE wrapped_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    region TEXT NOT NULL,
    key_arn TEXT NOT NULL,
    generation BIGINT NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (tenant_id, region)
);

CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,          -- hex SHA-256 of the token; the token itself is never stored
    scope TEXT NOT NULL,            -- operator | service | tenant
    tenant_id TEXT REFERENCES tenants (id),
    created_at BIGINT NOT NULL
);
