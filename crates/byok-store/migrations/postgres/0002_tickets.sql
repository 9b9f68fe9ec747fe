CREATE TABLE tickets (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    title TEXT NOT NULL,
    status TEXT NOT NULL,           -- open | resolved | closed
    reminders_sent BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE ticket_comments (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    author TEXT NOT NULL,           -- byok | customer | operator
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
