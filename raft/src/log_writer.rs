//! Group commit: one thread owns the log file. It takes every write that
//! is waiting, puts them into one `write`, calls `fdatasync` once, and only
//! then tells each writer its bytes are durable. Writers that arrive while
//! a sync is running form the next batch, so under load many appends share
//! one sync, and a lone append pays for exactly one.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use openraft::storage::IOFlushed;

use crate::cpu_clock;
use crate::log_file::{self, MAX_BATCH_BYTES};
use crate::types::AuraRaft;

/// Who to tell when a write is durable.
pub(crate) enum Durable {
    Raft(IOFlushed<AuraRaft>),
    Waiter(tokio::sync::oneshot::Sender<io::Result<()>>),
    Nobody,
}

impl Durable {
    fn complete(self, result: &Result<(), (io::ErrorKind, String)>) {
        let result = result
            .clone()
            .map_err(|(kind, msg)| io::Error::new(kind, msg));
        match self {
            Durable::Raft(cb) => cb.io_completed(result),
            Durable::Waiter(tx) => {
                let _ = tx.send(result);
            }
            Durable::Nobody => {}
        }
    }
}

pub(crate) enum Op {
    /// Append encoded records.
    Append { bytes: Vec<u8>, done: Durable },
    /// Replace the whole file with this image (compaction).
    Replace { image: Vec<u8>, done: Durable },
}

impl Op {
    fn len(&self) -> usize {
        match self {
            Op::Append { bytes, .. } => bytes.len(),
            Op::Replace { image, .. } => image.len(),
        }
    }
}

/// Counters for metrics, tests and benchmarks: how many syncs served how
/// many appends, and what the writer's thread cost.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub syncs: std::sync::atomic::AtomicU64,
    pub appends: std::sync::atomic::AtomicU64,
    /// CPU time of the writer's thread (writes and syncs), in nanoseconds.
    pub cpu_nanos: std::sync::atomic::AtomicU64,
}

pub(crate) fn spawn(
    path: PathBuf,
    file: File,
    stats: std::sync::Arc<WriterStats>,
) -> io::Result<mpsc::Sender<Op>> {
    let (tx, rx) = mpsc::channel::<Op>();
    std::thread::Builder::new()
        .name("aura-raft-log".into())
        .spawn(move || run(path, file, rx, &stats))?;
    Ok(tx)
}

fn run(path: PathBuf, mut file: File, rx: mpsc::Receiver<Op>, stats: &WriterStats) {
    use std::sync::atomic::Ordering::Relaxed;
    // After a failed write or sync the file's contents are unknown, so
    // every later write fails too rather than building on a hole.
    let mut failed: Option<(io::ErrorKind, String)> = None;
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let mut bytes = batch[0].len();
        while bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(op) => {
                    bytes += op.len();
                    batch.push(op);
                }
                Err(_) => break,
            }
        }
        let mut waiting = Vec::with_capacity(batch.len());
        let mut result: Result<(), (io::ErrorKind, String)> = match &failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        buf.clear();
        for op in batch {
            match op {
                Op::Append { bytes, done } => {
                    buf.extend_from_slice(&bytes);
                    waiting.push(done);
                    stats.appends.fetch_add(1, Relaxed);
                }
                Op::Replace { image, done } => {
                    if result.is_ok() {
                        result = flush(&mut file, &buf, stats);
                        buf.clear();
                    }
                    if result.is_ok() {
                        match log_file::replace(&path, &image) {
                            Ok(f) => file = f,
                            Err(e) => result = Err((e.kind(), e.to_string())),
                        }
                    }
                    waiting.push(done);
                }
            }
        }
        if result.is_ok() {
            result = flush(&mut file, &buf, stats);
        }
        if let Err(e) = &result
            && failed.is_none()
        {
            tracing::error!(error = %e.1, "raft log write failed; refusing further writes");
            failed = Some(e.clone());
        }
        for done in waiting {
            done.complete(&result);
        }
        // The thread does nothing else, so its clock is the writer's cost.
        stats.cpu_nanos.store(cpu_clock::thread_nanos(), Relaxed);
    }
}

fn flush(file: &mut File, buf: &[u8], stats: &WriterStats) -> Result<(), (io::ErrorKind, String)> {
    if buf.is_empty() {
        return Ok(());
    }
    let r = file.write_all(buf).and_then(|()| file.sync_data());
    stats
        .syncs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    r.map_err(|e| (e.kind(), e.to_string()))
}
