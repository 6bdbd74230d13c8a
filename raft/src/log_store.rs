//! openraft's log storage on top of [`log_file`] and the group-commit
//! [`log_writer`]. The entries live in memory as well (the file is only
//! read at start), which is fine because snapshots purge the log.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use openraft::OptionalSend;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};

use crate::log_file::{self, LogFileError, Record};
use crate::log_writer::{self, Durable, Op, WriterStats};
use crate::types::{AuraRaft, Entry, LogId, Vote};

/// When the file holds this many bytes of purged entries (and they are the
/// larger part of it), it is rewritten with only what is live.
const DEFAULT_COMPACT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Default)]
struct Mem {
    entries: BTreeMap<u64, (Entry, u32)>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    /// Bytes in the file, and bytes of it that a rewrite would keep.
    file_bytes: u64,
    live_bytes: u64,
}

impl Mem {
    fn replay(&mut self, record: Record, size: u64) {
        self.file_bytes += size;
        match record {
            Record::Entry(e) => {
                let index = e.index();
                if self.last_purged.as_ref().is_some_and(|p| index <= p.index) {
                    return;
                }
                self.live_bytes += size;
                if let Some((_, old)) = self.entries.insert(index, (*e, size as u32)) {
                    self.live_bytes -= old as u64;
                }
            }
            Record::Vote(v) => self.vote = Some(v),
            Record::Committed(c) => self.committed = c,
            Record::TruncateAfter(after) => self.truncate_after(after.as_ref()),
            Record::Purge(upto) => self.purge(upto),
        }
    }

    fn truncate_after(&mut self, after: Option<&LogId>) {
        let from = after.map_or(0, |l| l.index + 1);
        for (_, (_, size)) in self.entries.split_off(&from) {
            self.live_bytes -= size as u64;
        }
    }

    fn purge(&mut self, upto: LogId) {
        let keep = self.entries.split_off(&(upto.index + 1));
        for (_, (_, size)) in std::mem::replace(&mut self.entries, keep) {
            self.live_bytes -= size as u64;
        }
        if self
            .last_purged
            .as_ref()
            .is_none_or(|p| p.index < upto.index)
        {
            self.last_purged = Some(upto);
        }
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .values()
            .next_back()
            .map(|(e, _)| e.log_id())
            .or(self.last_purged)
    }

    /// The whole live log as a fresh file.
    fn image(&self) -> Vec<u8> {
        let mut out = log_file::MAGIC.to_vec();
        if let Some(v) = &self.vote {
            log_file::encode(&Record::Vote(*v), &mut out);
        }
        if let Some(p) = &self.last_purged {
            log_file::encode(&Record::Purge(*p), &mut out);
        }
        log_file::encode(&Record::Committed(self.committed), &mut out);
        for (e, _) in self.entries.values() {
            log_file::encode(&Record::Entry(Box::new(e.clone())), &mut out);
        }
        out
    }
}

struct Shared {
    mem: RwLock<Mem>,
    writer: mpsc::Sender<Op>,
    stats: Arc<WriterStats>,
    compact_bytes: u64,
}

/// The Raft log of one node. Cheap to clone; clones share the log.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.mem();
        f.debug_struct("LogStore")
            .field("entries", &m.entries.len())
            .field("last_purged", &m.last_purged)
            .finish()
    }
}

/// What opening found, for logs and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    pub records: usize,
    pub cut_bytes: u64,
}

impl LogStore {
    pub fn open(dir: &Path) -> Result<(LogStore, OpenReport), LogFileError> {
        Self::open_with(dir, DEFAULT_COMPACT_BYTES)
    }

    pub fn open_with(
        dir: &Path,
        compact_bytes: u64,
    ) -> Result<(LogStore, OpenReport), LogFileError> {
        let path = Self::path(dir);
        let io_err = |source| LogFileError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let recovered = log_file::recover(&path)?;
        let report = OpenReport {
            records: recovered.records.len(),
            cut_bytes: recovered.cut,
        };
        let mut mem = Mem {
            file_bytes: log_file::MAGIC.len() as u64,
            ..Mem::default()
        };
        for (record, size) in recovered.records {
            mem.replay(record, size);
        }
        let file = log_file::open_for_append(&path, recovered.valid_len).map_err(io_err)?;
        let stats = Arc::new(WriterStats::default());
        let writer = log_writer::spawn(path.clone(), file, stats.clone()).map_err(io_err)?;
        Ok((
            LogStore {
                shared: Arc::new(Shared {
                    mem: RwLock::new(mem),
                    writer,
                    stats,
                    compact_bytes,
                }),
            },
            report,
        ))
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join("raft.log")
    }

    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// Bytes of the entries not yet purged: what a restart reads back.
    pub fn live_bytes(&self) -> u64 {
        self.mem().live_bytes
    }

    fn mem(&self) -> std::sync::RwLockReadGuard<'_, Mem> {
        self.shared.mem.read().unwrap_or_else(|e| e.into_inner())
    }

    fn mem_mut(&self) -> std::sync::RwLockWriteGuard<'_, Mem> {
        self.shared.mem.write().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, op: Op) -> io::Result<()> {
        self.shared
            .writer
            .send(op)
            .map_err(|_| io::Error::other("raft log writer has stopped"))
    }

    /// Queues bytes to be told when they are durable. Called with the
    /// memory lock held, so the file's order is the memory's.
    fn queue_durable(
        &self,
        bytes: Vec<u8>,
    ) -> io::Result<tokio::sync::oneshot::Receiver<io::Result<()>>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Op::Append {
            bytes,
            done: Durable::Waiter(tx),
        })?;
        Ok(rx)
    }

    async fn durable(rx: tokio::sync::oneshot::Receiver<io::Result<()>>) -> io::Result<()> {
        rx.await
            .map_err(|_| io::Error::other("raft log writer has stopped"))?
    }

    /// Encodes `record`, applies it to memory and waits until it is durable.
    async fn write_durably(&self, record: Record) -> io::Result<()> {
        let mut bytes = Vec::new();
        log_file::encode(&record, &mut bytes);
        let rx = {
            let mut m = self.mem_mut();
            m.replay(record, bytes.len() as u64);
            self.queue_durable(bytes)?
        };
        Self::durable(rx).await
    }

    /// Waits until everything queued so far is durable.
    pub async fn sync(&self) -> io::Result<()> {
        let rx = {
            let _m = self.mem_mut();
            self.queue_durable(Vec::new())?
        };
        Self::durable(rx).await
    }

    /// Every entry index present, in order (tests check the log is a
    /// contiguous prefix).
    pub fn indexes(&self) -> Vec<u64> {
        self.mem().entries.keys().copied().collect()
    }

    pub fn committed(&self) -> Option<LogId> {
        self.mem().committed
    }
}

impl RaftLogReader<AuraRaft> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let m = self.mem();
        let start = match range.start_bound() {
            Bound::Included(s) => Bound::Included(*s),
            Bound::Excluded(s) => Bound::Excluded(*s),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(s) => Bound::Included(*s),
            Bound::Excluded(s) => Bound::Excluded(*s),
            Bound::Unbounded => Bound::Unbounded,
        };
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e)) = (start, end)
            && s >= e
        {
            return Ok(Vec::new());
        }
        Ok(m.entries
            .range((start, end))
            .map(|(_, (e, _))| e.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.mem().vote)
    }
}

impl RaftLogStorage<AuraRaft> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<AuraRaft>, io::Error> {
        let m = self.mem();
        Ok(LogState {
            last_purged_log_id: m.last_purged,
            last_log_id: m.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.write_durably(Record::Vote(*vote)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not waited for: after a crash a smaller committed index only means
        // re-applying less on start, never applying something uncommitted.
        let mut bytes = Vec::new();
        let record = Record::Committed(committed);
        log_file::encode(&record, &mut bytes);
        let mut m = self.mem_mut();
        m.replay(record, bytes.len() as u64);
        self.send(Op::Append {
            bytes,
            done: Durable::Nobody,
        })
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.mem().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<AuraRaft>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut bytes = Vec::new();
        let mut m = self.mem_mut();
        for entry in entries {
            let before = bytes.len();
            let record = Record::Entry(Box::new(entry));
            log_file::encode(&record, &mut bytes);
            m.replay(record, (bytes.len() - before) as u64);
        }
        self.send(Op::Append {
            bytes,
            done: Durable::Raft(callback),
        })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.write_durably(Record::TruncateAfter(last_log_id)).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut bytes = Vec::new();
        let record = Record::Purge(log_id);
        log_file::encode(&record, &mut bytes);
        let mut m = self.mem_mut();
        m.replay(record, bytes.len() as u64);
        let dead = m.file_bytes.saturating_sub(m.live_bytes);
        if dead >= self.shared.compact_bytes && dead > m.live_bytes {
            let image = m.image();
            m.file_bytes = image.len() as u64;
            m.live_bytes = image.len() as u64;
            tracing::info!(
                dead_bytes = dead,
                new_bytes = image.len(),
                "compacting raft log"
            );
            return self.send(Op::Replace {
                image,
                done: Durable::Nobody,
            });
        }
        self.send(Op::Append {
            bytes,
            done: Durable::Nobody,
        })
    }
}
