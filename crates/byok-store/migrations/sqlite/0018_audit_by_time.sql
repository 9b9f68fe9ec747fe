-- The console's audit view at scale: key uses counted per day and hour in SQL over a time
-- range (the chart), and entries of one tenant filtered by kind and time, newest first. Additive:
-- a node of the previous release ignores the index.
CREATE INDEX audit_log_tenant_kind_at ON audit_log (tenant_id, kind, at);
