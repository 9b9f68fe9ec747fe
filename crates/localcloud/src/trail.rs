//! A CloudTrail-like record of every call: who, what, where, on which key, with what result.
//!
//! Never plaintext, never secrets: parameters are recorded only where they are not sensitive
//! (role ARN, session name, external id, encryption context), as CloudTrail does. Events are
//! kept in memory (the most recent [`RING_CAPACITY`]) for `GET /_localcloud/trail` and appended
//! to `trail.jsonl` in the data directory by a background writer, off the request path.

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use serde::{Deserialize, Serialize};

use crate::state::PersistError;

/// How many events the in-memory window keeps.
pub const RING_CAPACITY: usize = 500_000;

/// The identity that made a call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserIdentity {
    /// `Root` or `AssumedRole`.
    #[serde(rename = "type")]
    pub kind: String,
    pub arn: String,
    pub account_id: String,
    pub access_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_name: Option<String>,
}

/// One recorded call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrailEvent {
    pub seq: u64,
    pub event_time: String,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: String,
    pub request_id: String,
    /// The account whose resource the call touched (the key's or role's), else the caller's.
    pub recipient_account_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_identity: Option<UserIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_parameters: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_message: Option<String>,
}

/// What a handler tells the trail about its call, beyond who made it.
#[derive(Debug, Default, Clone)]
pub struct TrailNote {
    pub resources: Vec<String>,
    pub recipient_account: Option<String>,
    pub encryption_context: Option<BTreeMap<String, String>>,
    pub request_parameters: Option<serde_json::Value>,
}

#[derive(Debug)]
struct Window {
    next_seq: u64,
    events: VecDeque<Arc<TrailEvent>>,
}

/// The trail: an in-memory window and, with a data directory, a file.
#[derive(Debug)]
pub struct Trail {
    window: Mutex<Window>,
    writer: Option<Mutex<Sender<Arc<TrailEvent>>>>,
}

impl Trail {
    pub fn open(dir: Option<&Path>) -> Result<Self, PersistError> {
        let mut window = Window { next_seq: 1, events: VecDeque::new() };
        let writer = match dir {
            None => None,
            Some(dir) => {
                let path = dir.join("trail.jsonl");
                let io = |source| PersistError::Io { path: path.clone(), source };
                if let Ok(file) = File::open(&path) {
                    for line in BufReader::new(file).lines() {
                        let line = line.map_err(io)?;
                        if let Ok(event) = serde_json::from_str::<TrailEvent>(&line) {
                            window.next_seq = event.seq + 1;
                            push_bounded(&mut window.events, Arc::new(event));
                        }
                    }
                }
                let file = crate::state::private(OpenOptions::new().create(true).append(true)).open(&path).map_err(io)?;
                let (tx, rx) = channel();
                std::thread::Builder::new().name("localcloud-trail".into()).spawn(move || write_loop(file, rx)).map_err(io)?;
                Some(Mutex::new(tx))
            }
        };
        Ok(Self { window: Mutex::new(window), writer })
    }

    /// Records an event, assigning its sequence number.
    pub fn record(&self, mut event: TrailEvent) {
        let event = {
            let mut window = self.window.lock();
            event.seq = window.next_seq;
            window.next_seq += 1;
            let event = Arc::new(event);
            push_bounded(&mut window.events, event.clone());
            event
        };
        if let Some(writer) = &self.writer {
            // A send fails only if the writer thread died; the in-memory trail still has it.
            let _ = writer.lock().send(event);
        }
    }

    /// Events with `seq > since`, oldest first, filtered, at most `limit`.
    pub fn query(&self, since: u64, filter: impl Fn(&TrailEvent) -> bool, limit: usize) -> Vec<Arc<TrailEvent>> {
        let window = self.window.lock();
        let start = window.events.partition_point(|e| e.seq <= since);
        window.events.range(start..).filter(|e| filter(e)).take(limit).cloned().collect()
    }
}

fn push_bounded(events: &mut VecDeque<Arc<TrailEvent>>, event: Arc<TrailEvent>) {
    if events.len() == RING_CAPACITY {
        events.pop_front();
    }
    events.push_back(event);
}

fn write_loop(file: File, rx: Receiver<Arc<TrailEvent>>) {
    let mut out = BufWriter::new(file);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(event) = next {
            if serde_json::to_writer(&mut out, event.as_ref()).map_err(std::io::Error::from).and_then(|()| out.write_all(b"\n")).is_err() {
                tracing::error!("could not write the trail file");
            }
            next = rx.try_recv().ok();
        }
        // Flush whenever the queue drains, so the file is never far behind.
        if out.flush().is_err() {
            tracing::error!("could not flush the trail file");
        }
    }
}
