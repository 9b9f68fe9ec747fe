-- Webhook endpoints: a tenant's (tenant_id set; the tenant admin's and the operator's) or the
-- operator's own (tenant_id NULL: every tenant's events and the operator's). `events` is a
-- space-separated list of event types, or '*'. `secrets` is JSON, the signing secrets in
-- force: [{"secret": "whsec_…", "until": UNIX|null}] (two during a rotation).
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secrets TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id);

-- The outbox is the audit log itself (written in the same transaction as every change): the
-- dispatcher turns entries after its cursor into deliveries, one per matching endpoint, in one
-- transaction with the cursor's move. The body is fixed then, so every attempt sends the same
-- bytes under the same id.
CREATE TABLE webhook_deliveries (
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    tenant_id TEXT,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (status, webhook_id, seq);

CREATE TABLE webhook_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
