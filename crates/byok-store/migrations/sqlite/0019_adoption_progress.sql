-- Records moved off provider-held generations by rewrap, per tenant adopting the customer's
-- keys (`byok tenant adopt`): each node adds what it rewrapped every second, so the fleet's
-- progress and rate are the same whichever node is asked.
CREATE TABLE adoption_progress (
    tenant_id TEXT PRIMARY KEY,
    records BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL
);
