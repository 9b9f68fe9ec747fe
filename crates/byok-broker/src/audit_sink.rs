//! The audit log streamed out as it grows, to where the operator's SIEM already looks: a file
//! (JSON lines, rotated by size), a syslog server (RFC 5424 over TCP, octet-counted frames as
//! RFC 6587 says) or an HTTPS endpoint (each batch a webhook signed as Standard Webhooks says). The leader reads the log after the sink's cursor, in order, writes a batch,
//! and only then moves the cursor (a compare-and-set in the store): an outage of the sink loses
//! nothing — the entries wait in the log (pruning stops short of them) and go out when it is
//! back. Delivery is at least once: a batch written but not yet acknowledged by the cursor is
//! written again after a crash; receivers de-duplicate on `seq`.

use tokio::io::AsyncWriteExt;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::sink_target::append_file;
pub use crate::sink_target::{SinkError, SinkSecret, SinkTarget, json_line, syslog_message, webhook_batch};

/// Entries per round.
const BATCH: i64 = 1000;

impl Broker {
    /// Streams the audit log to `target` from now on (see the module's documentation).
    pub fn with_audit_sink(mut self, target: SinkTarget) -> Self {
        self.audit_sink = Some(target);
        self
    }

    /// The configured sink, if any.
    pub fn audit_sink(&self) -> Option<&SinkTarget> {
        self.audit_sink.as_ref()
    }

    /// One round on the leader: the entries after the sink's cursor (a batch at a time) are
    /// written, then the cursor moves past them. Returns how many entries went out.
    pub async fn ship_audit(&self) -> Result<usize, BrokerError> {
        let Some(target) = &self.audit_sink else { return Ok(0) };
        let name = target.name();
        let mut shipped = 0;
        loop {
            let cursor = self.store.sink_cursor(&name).await?;
            let entries = self.store.audit(None, cursor, BATCH).await?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                self.metrics.audit_sink_behind.set(0);
                return Ok(shipped);
            };
            // Until this batch is taken, the sink is behind by at least it (an alert's figure).
            self.metrics.audit_sink_behind.set(i64::try_from(entries.len()).unwrap_or(i64::MAX));
            let io = |source| BrokerError::AuditSink(SinkError::Io { sink: name.clone(), source });
            match target {
                SinkTarget::File { path, max_bytes, keep } => {
                    let lines: String = entries.iter().map(|e| json_line(e) + "\n").collect();
                    let (path, max_bytes, keep) = (path.clone(), *max_bytes, *keep);
                    tokio::task::spawn_blocking(move || append_file(&path, max_bytes, keep, &lines))
                        .await
                        .map_err(|e| io(std::io::Error::other(e)))?
                        .map_err(io)?;
                }
                SinkTarget::Webhook { url, secret } => {
                    let now = self.clock.now();
                    let (id, body) = webhook_batch(&entries, now);
                    crate::webhook_delivery::post_signed(url, secret.as_str(), &id, now.unix_timestamp(), body).await.map_err(
                        |e| match e {
                            crate::webhook_delivery::DeliveryError::Refused(status) => {
                                BrokerError::AuditSink(SinkError::Refused { sink: name.clone(), status: status.as_u16() })
                            }
                            other => io(std::io::Error::other(other.to_string())),
                        },
                    )?;
                }
                SinkTarget::Syslog { host, port } => {
                    let mut frames = Vec::new();
                    for e in &entries {
                        let message = syslog_message(e, &self.config.node_id);
                        frames.extend_from_slice(format!("{} {message}", message.len()).as_bytes());
                    }
                    let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await.map_err(io)?;
                    stream.write_all(&frames).await.map_err(io)?;
                    stream.flush().await.map_err(io)?;
                    stream.shutdown().await.map_err(io)?;
                }
            }
            if !self.store.advance_sink_cursor(&name, cursor, last, self.clock.now()).await? {
                // Another leader moved it: it shipped these too (at least once).
                return Ok(shipped);
            }
            shipped += entries.len();
            if (entries.len() as i64) < BATCH {
                self.metrics.audit_sink_behind.set(0);
                return Ok(shipped);
            }
        }
    }
}
