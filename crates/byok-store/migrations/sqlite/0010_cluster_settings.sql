-- What every node of a cluster must agree on, written once by the first node that needs it
-- and read by every other: the canary's role and external id, the provider account byok made
-- in a localcloud, which generated token is the cluster's. A node's data directory holds only
-- what is that node's own.
CREATE TABLE cluster_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
