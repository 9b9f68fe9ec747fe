-- Where each streaming audit sink (a file, a syslog server) is in the log: the entries after
-- its cursor are not delivered yet, so they are kept (pruning stops short of them) and sent
-- after an outage of the sink, in order.
CREATE TABLE audit_sink_cursors (
    sink TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
