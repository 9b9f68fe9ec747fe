//! A CloudTrail-like record of every call: who, what, where, on which key, with what result.
//!
//! Never plaintext, never secrets: parameters are recorded only where they are not sensitive
//! (role ARN, session name, external id, encryption context), as CloudTrail does.
//!
//! Bounded by bytes, so that weeks of saturating traffic keep memory and disk flat
//! ([`TrailLimits`]): the most recent events are kept in memory for `GET /_localcloud/trail`
//! (the queryable window), and appended to `trail.jsonl` in the data directory by a background
//! writer, off the request path; a file that reaches its size is rotated (`trail.1.jsonl`, …)
//! and the oldest beyond the count is deleted. A restart reads back only the newest file (at
//! most one file's size, whatever the history), so its time does not grow with the trail.

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use serde::{Deserialize, Serialize};

use crate::state::PersistError;

/// How much of the trail is kept, in memory and on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailLimits {
    /// The in-memory window's size (events' approximate JSON size, summed).
    pub memory_bytes: usize,
    /// A file's size before it is rotated.
    pub file_bytes: u64,
    /// Files kept: the current one and `files - 1` rotated ones.
    pub files: usize,
}

impl Default for TrailLimits {
    /// 64 MiB in memory (~150,000 events), 4 files of 64 MiB on disk.
    fn default() -> Self {
        Self { memory_bytes: 64 << 20, file_bytes: 64 << 20, files: 4 }
    }
}

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
    /// Each event and its approximate size.
    events: VecDeque<(Arc<TrailEvent>, usize)>,
    bytes: usize,
    limit: usize,
}

impl Window {
    fn push(&mut self, event: Arc<TrailEvent>) {
        let size = event.approx_bytes();
        self.bytes += size;
        self.events.push_back((event, size));
        while self.bytes > self.limit {
            match self.events.pop_front() {
                Some((_, size)) => self.bytes -= size,
                None => break,
            }
        }
    }
}

impl TrailEvent {
    /// Roughly its size as a JSON line (its strings, and a fixed allowance for the rest):
    /// what the window's byte budget counts, without serializing on the request path.
    fn approx_bytes(&self) -> usize {
        let strings =
            [&self.event_time, &self.event_source, &self.event_name, &self.aws_region, &self.request_id, &self.recipient_account_id];
        let identity = self.user_identity.as_ref().map_or(0, |u| {
            u.kind.len() + u.arn.len() + u.account_id.len() + u.access_key_id.len() + u.session_name.as_ref().map_or(0, String::len) + 80
        });
        let context = self.encryption_context.as_ref().map_or(0, |c| c.iter().map(|(k, v)| k.len() + v.len() + 8).sum());
        let parameters = self.request_parameters.as_ref().map_or(0, |p| p.to_string().len());
        let error = self.error_code.as_ref().map_or(0, String::len) + self.error_message.as_ref().map_or(0, String::len);
        strings.iter().map(|s| s.len()).sum::<usize>()
            + identity
            + context
            + parameters
            + error
            + self.resources.iter().map(|r| r.len() + 3).sum::<usize>()
            + 200
    }
}

/// The trail: an in-memory window and, with a data directory, a file.
#[derive(Debug)]
pub struct Trail {
    window: Mutex<Window>,
    writer: Option<Mutex<Sender<Arc<TrailEvent>>>>,
}

impl Trail {
    /// The trail with the default limits.
    pub fn open(dir: Option<&Path>) -> Result<Self, PersistError> {
        Self::open_with(dir, TrailLimits::default())
    }

    /// The trail kept within `limits`; with a directory, the newest file's events are read back.
    pub fn open_with(dir: Option<&Path>, limits: TrailLimits) -> Result<Self, PersistError> {
        let mut window = Window { next_seq: 1, events: VecDeque::new(), bytes: 0, limit: limits.memory_bytes };
        let writer = match dir {
            None => None,
            Some(dir) => {
                let path = dir.join("trail.jsonl");
                let io = |source| PersistError::Io { path: path.clone(), source };
                // The newest events: the current file, or the last rotated one if the current
                // file is empty (just rotated). Bounded by one file's size.
                let newest = [path.clone(), rotated(dir, 1)].into_iter().find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
                if let Some(newest) = newest {
                    let file = File::open(&newest).map_err(io)?;
                    for line in BufReader::new(file).lines() {
                        let line = line.map_err(io)?;
                        if let Ok(event) = serde_json::from_str::<TrailEvent>(&line) {
                            window.next_seq = event.seq + 1;
                            window.push(Arc::new(event));
                        }
                    }
                }
                let file = crate::state::private(OpenOptions::new().create(true).append(true)).open(&path).map_err(io)?;
                let written = file.metadata().map_err(io)?.len();
                let (tx, rx) = channel();
                let files = Files { dir: dir.to_path_buf(), limits, written };
                std::thread::Builder::new().name("localcloud-trail".into()).spawn(move || write_loop(file, files, rx)).map_err(io)?;
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
            window.push(event.clone());
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
        let start = window.events.partition_point(|(e, _)| e.seq <= since);
        window.events.range(start..).map(|(e, _)| e).filter(|e| filter(e)).take(limit).cloned().collect()
    }

    /// The in-memory window: how many events, and their approximate bytes.
    pub fn window_size(&self) -> (usize, usize) {
        let window = self.window.lock();
        (window.events.len(), window.bytes)
    }
}

/// `trail.N.jsonl`: the Nth newest rotated file.
fn rotated(dir: &Path, n: usize) -> std::path::PathBuf {
    dir.join(format!("trail.{n}.jsonl"))
}

/// The writer's files: where they are, their limits, and the current one's size.
struct Files {
    dir: std::path::PathBuf,
    limits: TrailLimits,
    written: u64,
}

impl Files {
    /// Shifts `trail.jsonl` to `trail.1.jsonl` (and each older one up), deleting what falls
    /// past the count, and opens a fresh `trail.jsonl`.
    fn rotate(&mut self) -> std::io::Result<File> {
        let keep = self.limits.files.max(1);
        if keep > 1 {
            // The oldest kept file falls off the end (absent until the trail has filled them).
            let _ = std::fs::remove_file(rotated(&self.dir, keep - 1));
        }
        for n in (1..keep.saturating_sub(1)).rev() {
            let from = rotated(&self.dir, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.dir, n + 1))?;
            }
        }
        let current = self.dir.join("trail.jsonl");
        if keep > 1 {
            std::fs::rename(&current, rotated(&self.dir, 1))?;
        } else {
            std::fs::remove_file(&current)?;
        }
        self.written = 0;
        crate::state::private(OpenOptions::new().create(true).append(true)).open(&current)
    }
}

fn write_loop(file: File, mut files: Files, rx: Receiver<Arc<TrailEvent>>) {
    let mut out = BufWriter::new(file);
    let mut line = Vec::with_capacity(1024);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(event) = next {
            line.clear();
            if serde_json::to_writer(&mut line, event.as_ref()).is_ok() {
                line.push(b'\n');
                if files.written > 0 && files.written + line.len() as u64 > files.limits.file_bytes {
                    let rotated = out.flush().and_then(|()| files.rotate());
                    match rotated {
                        Ok(fresh) => out = BufWriter::new(fresh),
                        Err(e) => tracing::error!(error = %e, "could not rotate the trail file; it keeps growing"),
                    }
                }
                match out.write_all(&line) {
                    Ok(()) => files.written += line.len() as u64,
                    Err(e) => tracing::error!(error = %e, "could not write the trail file"),
                }
            }
            next = rx.try_recv().ok();
        }
        // Flush whenever the queue drains, so the file is never far behind.
        if out.flush().is_err() {
            tracing::error!("could not flush the trail file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> TrailEvent {
        TrailEvent {
            seq: 0,
            event_time: "2026-12-07T00:00:00Z".into(),
            event_source: "kms.amazonaws.com".into(),
            event_name: "Decrypt".into(),
            aws_region: "us-east-1".into(),
            request_id: format!("request-{n:08}"),
            recipient_account_id: "111122223333".into(),
            user_identity: None,
            resources: vec!["arn:aws:kms:us-east-1:111122223333:key/abc".into()],
            encryption_context: None,
            request_parameters: None,
            error_code: None,
            error_message: None,
        }
    }

    fn wait_for_writer(dir: &Path, at_least: u64) {
        for _ in 0..200 {
            let total: u64 = std::fs::read_dir(dir).expect("dir").filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
            if total >= at_least {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn the_trail_stays_within_its_bytes_in_memory_and_on_disk_and_restarts_from_the_newest_file() {
        let dir = tempfile::tempdir().expect("dir");
        let limits = TrailLimits { memory_bytes: 64 << 10, file_bytes: 32 << 10, files: 3 };
        let trail = Trail::open_with(Some(dir.path()), limits).expect("trail");
        let n = 5_000;
        for i in 0..n {
            trail.record(event(i));
        }
        let (kept, bytes) = trail.window_size();
        assert!(bytes <= limits.memory_bytes && kept < n as usize, "{kept} events, {bytes} bytes");
        // The window is the newest events, queryable.
        let newest = trail.query(n - 10, |_| true, 100);
        assert_eq!(newest.iter().map(|e| e.seq).collect::<Vec<_>>(), (n - 9..=n).collect::<Vec<_>>());
        assert!(trail.query(0, |_| true, 1)[0].seq > 1, "the oldest events left memory");
        drop(trail);
        wait_for_writer(dir.path(), 2 * limits.file_bytes);
        std::thread::sleep(std::time::Duration::from_millis(200));

        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["trail.1.jsonl", "trail.2.jsonl", "trail.jsonl"], "rotated, the oldest deleted");
        for name in &names {
            let size = std::fs::metadata(dir.path().join(name)).expect("size").len();
            assert!(size <= limits.file_bytes, "{name} is {size} bytes");
        }

        // A restart reads back at most the newest file, and numbering goes on.
        let again = Trail::open_with(Some(dir.path()), limits).expect("reopen");
        let (kept, _) = again.window_size();
        let lines_in_newest = [dir.path().join("trail.jsonl"), dir.path().join("trail.1.jsonl")]
            .iter()
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .map(|p| std::fs::read_to_string(p).expect("read").lines().count())
            .expect("a file with events");
        assert!(kept <= lines_in_newest, "read back {kept} events, the newest file has {lines_in_newest}");
        again.record(event(n));
        assert_eq!(again.query(n, |_| true, 10).last().map(|e| e.seq), Some(n + 1));
    }
}
