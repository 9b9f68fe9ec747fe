//! One place that runs a node: [`spawn`] starts the broker's background loops — the monitor
//! (passes, probes the data path asks for, deadlines), the leader-lease keeper, the change
//! listener, the cache sync, the webhook dispatcher and the audit sink — and [`NodeHandle::shutdown`] stops them together and waits
//! for them to finish (the monitor writes its pending probe summaries and gives up the lease,
//! so another node takes over at once).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::monitor;

/// The running loops of one node.
#[derive(Debug)]
pub struct NodeHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

/// Starts the node's loops on the current Tokio runtime.
pub fn spawn(broker: Arc<Broker>) -> NodeHandle {
    let (stop, stopped) = watch::channel(false);
    let signal = |mut rx: watch::Receiver<bool>| async move {
        // An error means the handle is gone: stop as well.
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let tasks = vec![
        ("monitor", tokio::spawn(monitor::run(broker.clone(), signal(stopped.clone())))),
        ("lease", tokio::spawn(monitor::keep_lease(broker.clone(), signal(stopped.clone())))),
        ("listener", tokio::spawn(monitor::follow_changes(broker.clone(), signal(stopped.clone())))),
        ("cache sync", tokio::spawn(monitor::sync_caches(broker.clone(), signal(stopped.clone())))),
        ("webhooks", tokio::spawn(deliver_webhooks(broker.clone(), signal(stopped.clone())))),
        ("adoption tally", tokio::spawn(flush_adoption_tally(broker.clone(), signal(stopped.clone())))),
        ("audit sink", tokio::spawn(ship_audit(broker, signal(stopped)))),
    ];
    NodeHandle { stop, tasks }
}

/// Every second, on every node: the records it rewrapped off provider-held generations, added
/// to the store (see [`crate::adoption`]); once more when stopping, so nothing counted is lost.
async fn flush_adoption_tally(broker: Arc<Broker>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = &mut stop => true,
            _ = tick.tick() => false,
        };
        if let Err(e) = broker.flush_adoption_tally().await {
            tracing::warn!(error = %e, "adoption progress: the store did not take this node's counts; kept for the next second");
        }
        if stopping {
            return;
        }
    }
}

/// Every second, on the leader: webhook events enqueued and delivered (see
/// [`crate::webhook_delivery`]). A round cut short by the stop is picked up by the next leader:
/// nothing is marked delivered before its endpoint said so.
async fn deliver_webhooks(broker: Arc<Broker>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        if !broker.is_leader() {
            continue;
        }
        tokio::select! {
            _ = &mut stop => return,
            result = broker.deliver_webhooks() => if let Err(e) = result {
                tracing::warn!(error = %e, "webhook dispatcher: the round failed; tried again in a second");
            },
        }
    }
}

/// Every second, on the leader, with a sink configured: the audit log after the sink's cursor
/// goes out (see [`crate::audit_sink`]). A failure is logged and tried again; the entries wait.
async fn ship_audit(broker: Arc<Broker>, stop: impl std::future::Future<Output = ()>) {
    if broker.audit_sink().is_none() {
        return;
    }
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        if !broker.is_leader() {
            continue;
        }
        tokio::select! {
            _ = &mut stop => return,
            result = broker.ship_audit() => match result {
                Ok(_) if failing => {
                    failing = false;
                    tracing::warn!("audit sink: delivering again");
                }
                Ok(_) => {}
                // Said once when it starts failing, then at debug level each second.
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(error = %e, "audit sink: cannot deliver; the entries wait in the log and go out when it is back");
                }
                Err(e) => tracing::debug!(error = %e, "audit sink: still failing"),
            },
        }
    }
}

impl NodeHandle {
    /// Stops every loop and waits for each, at most `within` in all; returns the loops that did
    /// not finish in time (logged too: their pending work, such as probe summaries, may be lost).
    pub async fn shutdown(self, within: Duration) -> Vec<&'static str> {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + within;
        let mut late = Vec::new();
        for (name, task) in self.tasks {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = name, error = %e, "a node loop ended abnormally"),
                Err(_) => {
                    tracing::error!(task = name, "a node loop did not stop in time; its pending work may be lost");
                    late.push(name);
                }
            }
        }
        late
    }
}
