-- Exactly-once side effects across nodes: at most one ticket per tenant that is not closed
-- (a resolved one is reopened by the next revocation). Duplicates a race may have left before
-- this constraint are closed, keeping the newest.
UPDATE tickets SET status = 'closed'
WHERE status <> 'closed'
  AND id NOT IN (SELECT MAX(id) FROM tickets WHERE status <> 'closed' GROUP BY tenant_id);
CREATE UNIQUE INDEX tickets_one_live_per_tenant ON tickets (tenant_id) WHERE status <> 'closed';
