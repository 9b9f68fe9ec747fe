-- Which node does the background work (monitor, sweeper, reminders, reconciliation): a lease
-- row judged by the database's clock, as Vault's and OpenBao's PostgreSQL HA backends do.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    valid_until TIMESTAMPTZ NOT NULL
);
