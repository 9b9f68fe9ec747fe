-- The operator's alerts ("operator tickets"): provider faults, held revocations. At most one
-- open alert of each kind, enforced here whatever nodes race.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,             -- provider_identity | revocations_held
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,           -- open | resolved
    opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open_per_kind ON alerts (kind) WHERE status = 'open';

-- Revocations held for a person: too many tenants denied at once to be believed.
CREATE TABLE holds (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    detected_at BIGINT NOT NULL,    -- when the denial was first seen: a release revokes as of then
    detail TEXT NOT NULL,           -- JSON: what each region answered
    created_at BIGINT NOT NULL
);

-- Tokens get a lifecycle: expiry, revocation, and where they came from.
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN revoked_at BIGINT;
ALTER TABLE tokens ADD COLUMN origin TEXT NOT NULL DEFAULT 'issued';   -- issued | configured
-- Before this migration the only operator and service tokens were the configured ones.
UPDATE tokens SET origin = 'configured' WHERE scope IN ('operator', 'service');
