//! The replicated state machine: the engine's [`EngineState`], fed by
//! committed log entries.
//!
//! The log is the source of truth and the engine state is derived from it.
//! What is persisted of the state is the latest snapshot (in the engine's
//! own snapshot format, which carries and checks the state digest; on disk
//! as [`crate::snapshot_file`] lays it out); on
//! start the node loads it and openraft re-applies the committed entries
//! that follow it. Applying is deterministic, so every replica and every
//! restart arrives at the same digest.

use std::borrow::Cow;
use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};

use aura_engine::Digest;
use aura_engine::identity::Kek;
use aura_engine::ids::{MissionId, TenantId};
use aura_engine::machine::{Command, EngineState, Event, Rejection, RestoredState};
use aura_engine::time::Timestamp;
use futures_util::StreamExt;
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::broadcast;

use crate::cpu_clock;
use crate::log_format::LogFormat;
use crate::snapshot_file::SnapshotFiles;
use crate::types::{
    Applied, AuraRaft, BodyForm, LogId, Proposal, SequenceApplied, Snapshot, SnapshotBody,
    SnapshotData, SnapshotMeta, StoredMembership,
};

#[derive(Debug, Default)]
struct Current {
    engine: EngineState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

#[derive(Clone, Debug)]
struct Stored {
    meta: SnapshotMeta,
    data: SnapshotData,
}

#[derive(Debug)]
struct Shared {
    files: SnapshotFiles,
    current: RwLock<Current>,
    snapshot: Mutex<Option<Stored>>,
    stats: AppliedStats,
    snapshots: SnapshotStats,
    feed: broadcast::Sender<Arc<FeedItem>>,
    /// Snapshots are built in engine snapshot format 2 ([`LogFormat`]).
    snapshots_in_format_2: bool,
    /// Opens the sealed tenant keys of every state this node restores.
    kek: Kek,
}

/// What one applied command did, as live subscribers see it. Every node
/// applies every committed command, so every node's feed carries every
/// tenant's events: a subscriber needs no other fan-out than Raft's.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub index: u64,
    pub tenant: TenantId,
    pub mission: Option<MissionId>,
    pub at: Timestamp,
    pub events: Vec<Event>,
}

/// How many applied commands a slow subscriber may fall behind before it
/// is told it lagged (and should re-read the record).
const FEED_CAPACITY: usize = 4096;

/// Counts of what this node has applied since it started (for metrics).
#[derive(Debug, Default)]
pub struct AppliedStats {
    /// Log entries, a sequence of commands counting once.
    pub entries: AtomicU64,
    /// Commands applied or refused (those a refusal left unapplied in a
    /// sequence are not counted).
    pub commands: AtomicU64,
    pub refused: AtomicU64,
    /// Policy decisions by outcome: permit, escalate, deny.
    pub decisions: [AtomicU64; 3],
    /// CPU time spent applying entries, in nanoseconds.
    pub cpu_nanos: AtomicU64,
}

impl AppliedStats {
    fn count(&self, applied: &Applied) {
        self.entries.fetch_add(1, Relaxed);
        let (events, refused): (&[Vec<Event>], _) = match applied {
            Applied::Refused(r) => (&[], Some(r)),
            Applied::Events(events) => (std::slice::from_ref(events), None),
            Applied::Sequence(s) => (&s.events, s.refused.as_ref()),
            Applied::Nothing => return,
        };
        let commands = events.len() + usize::from(refused.is_some());
        self.commands.fetch_add(commands as u64, Relaxed);
        if refused.is_some() {
            self.refused.fetch_add(1, Relaxed);
        }
        for e in events.iter().flatten() {
            let d = match e {
                Event::PlanDecided { decision, .. } | Event::ToolCallDecided { decision, .. } => {
                    decision
                }
                _ => continue,
            };
            self.decisions[d.decision as usize].fetch_add(1, Relaxed);
        }
    }
}

/// Snapshots this node has built since it started (for metrics).
#[derive(Debug, Default)]
pub struct SnapshotStats {
    pub built: AtomicU64,
    /// Bytes serialized into them, in all.
    pub bytes: AtomicU64,
    /// Bytes written to disk for them and for snapshots installed: less
    /// than serialized, as a sealed audit segment is written once
    /// ([`crate::snapshot_file`]).
    pub written: AtomicU64,
    /// CPU time spent building and writing them, in nanoseconds.
    pub cpu_nanos: AtomicU64,
}

/// The engine as a Raft state machine. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct EngineStore {
    shared: Arc<Shared>,
}

impl EngineStore {
    /// Opens the state machine in `dir`, restoring the latest snapshot.
    /// It builds snapshots in the newest form `format` allows, so that a
    /// node held at an older format can still be downgraded.
    pub fn open(dir: &Path, format: LogFormat, kek: Kek) -> io::Result<EngineStore> {
        std::fs::create_dir_all(dir)?;
        let mut current = Current::default();
        current.engine.unlock(kek.clone()).map_err(locked)?;
        let mut stored = None;
        let (files, found) = SnapshotFiles::open(dir)?;
        let in_format_2 = format < LogFormat::MissionDigests;
        if let Some((meta, data)) = found {
            let mut restored = RestoredState::of(&data)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            restored.unlock(kek.clone()).map_err(locked)?;
            let data = kept_form(in_format_2, &restored, Arc::new(SnapshotBody::Whole(data)));
            current.engine = restored.into_state();
            current.last_applied = meta.last_log_id;
            current.membership = meta.last_membership.clone();
            stored = Some(Stored { meta, data });
        }
        Ok(EngineStore {
            shared: Arc::new(Shared {
                files,
                current: RwLock::new(current),
                snapshot: Mutex::new(stored),
                stats: AppliedStats::default(),
                snapshots: SnapshotStats::default(),
                feed: broadcast::channel(FEED_CAPACITY).0,
                snapshots_in_format_2: in_format_2,
                kek,
            }),
        })
    }

    fn current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn current_mut(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.shared
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the applied engine state.
    pub fn read<R>(&self, f: impl FnOnce(&EngineState) -> R) -> R {
        f(&self.current().engine)
    }

    pub fn digest(&self) -> Digest {
        self.current().engine.digest()
    }

    pub fn stats(&self) -> &AppliedStats {
        &self.shared.stats
    }

    /// Live events of every command this node applies from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.shared.feed.subscribe()
    }

    /// Sends what applying each of the proposal's commands gave to the
    /// feed's subscribers: taken where no client on this node waits for
    /// the answer (a follower's entries), copied otherwise.
    fn publish(&self, index: u64, proposal: &Proposal, applied: Cow<'_, Applied>) {
        if self.shared.feed.receiver_count() == 0 {
            return;
        }
        let cmds = proposal.commands();
        // A borrowed answer is still the proposer's: what goes to the feed
        // is a copy.
        match applied.into_owned() {
            Applied::Events(events) => self.publish_one(index, &cmds[0], Ok(events)),
            Applied::Refused(r) => self.publish_one(index, &cmds[0], Err(&r)),
            Applied::Sequence(s) => {
                let applied = s.events.len();
                for (cmd, events) in cmds.iter().zip(s.events) {
                    self.publish_one(index, cmd, Ok(events));
                }
                if let Some(r) = &s.refused {
                    self.publish_one(index, &cmds[applied], Err(r));
                }
            }
            Applied::Nothing => {}
        }
    }

    fn publish_one(&self, index: u64, cmd: &Command, applied: Result<Vec<Event>, &Rejection>) {
        let events = match applied {
            Ok(events) => events,
            Err(r) if r.is_audited() => vec![Event::CommandRejected {
                command: cmd.body.kind().to_owned(),
                rejection: r.clone(),
            }],
            Err(_) => return,
        };
        // No receiver left between the check and here is not an error.
        let _ = self.shared.feed.send(Arc::new(FeedItem {
            index,
            tenant: cmd.tenant.clone(),
            mission: cmd.body.mission().cloned(),
            at: cmd.at,
            events,
        }));
    }

    pub fn last_applied(&self) -> Option<LogId> {
        self.current().last_applied
    }

    pub fn snapshot_stats(&self) -> &SnapshotStats {
        &self.shared.snapshots
    }

    /// The size of the latest snapshot, built or installed; 0 if none.
    pub fn snapshot_bytes(&self) -> u64 {
        self.shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |s| s.data.len() as u64)
    }

    /// Writes a snapshot, in pieces unless it is one buffer (a node
    /// writing format 2), and keeps it as the latest.
    fn store_snapshot(&self, meta: SnapshotMeta, data: SnapshotData) -> io::Result<()> {
        let files = &self.shared.files;
        let written = match data.form() {
            BodyForm::Pieces(pieces) => files.write_pieces(&meta, pieces)?,
            BodyForm::Whole(bytes) => files.write_whole(&meta, bytes)?,
        };
        self.shared
            .snapshots
            .written
            .fetch_add(written.bytes, Relaxed);
        *self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Stored { meta, data });
        Ok(())
    }
}

/// The form a snapshot is kept in, in memory and on disk, once `restored`
/// is the state it holds: pieces of that state, which share with it all that
/// never changes (sealed segments, closed missions, tokens), rather than
/// the bytes read or received, which are as large as the state and would
/// be held until the next snapshot. A node writing format 2 keeps the
/// bytes it has, which older versions read.
fn kept_form(in_format_2: bool, restored: &RestoredState, body: SnapshotData) -> SnapshotData {
    if in_format_2 {
        body
    } else {
        Arc::new(SnapshotBody::Pieces(restored.snapshot_pieces()))
    }
}

fn locked(e: aura_engine::machine::LockedKey) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, e)
}

/// Applies one entry's commands in order; a sequence stops at its first
/// refused command.
fn apply_proposal(engine: &mut EngineState, proposal: &Proposal) -> Applied {
    match proposal {
        Proposal::One(cmd) => match engine.apply(cmd) {
            Ok(events) => Applied::Events(events),
            Err(rejection) => Applied::Refused(rejection),
        },
        Proposal::Sequence(cmds) => {
            let mut done = SequenceApplied::default();
            for cmd in cmds.iter() {
                match engine.apply(cmd) {
                    Ok(events) => done.events.push(events),
                    Err(rejection) => {
                        done.refused = Some(rejection);
                        break;
                    }
                }
            }
            Applied::Sequence(done)
        }
    }
}

impl RaftSnapshotBuilder<AuraRaft> for EngineStore {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let cpu = &self.shared.snapshots.cpu_nanos;
        let (meta, data) = cpu_clock::counted(cpu, || {
            let c = self.current();
            let meta = SnapshotMeta {
                last_log_id: c.last_applied,
                last_membership: c.membership.clone(),
            };
            // Pieces share the sealed audit segments with the state, so
            // they are neither copied nor kept twice.
            let built = if self.shared.snapshots_in_format_2 {
                SnapshotBody::Whole(c.engine.snapshot_in_format_2())
            } else {
                SnapshotBody::Pieces(c.engine.snapshot_pieces())
            };
            (meta, Arc::new(built))
        });
        let store = self.clone();
        let (m, d) = (meta.clone(), data.clone());
        tokio::task::spawn_blocking(move || {
            let cpu = &store.shared.snapshots.cpu_nanos;
            cpu_clock::counted(cpu, || store.store_snapshot(m, d))
        })
        .await
        .map_err(io::Error::other)??;
        let stats = self.snapshot_stats();
        stats.built.fetch_add(1, Relaxed);
        stats.bytes.fetch_add(data.len() as u64, Relaxed);
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = data.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<AuraRaft> for EngineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = EngineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let c = self.current();
        Ok((c.last_applied, c.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<AuraRaft>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id();
            let mut proposal = None;
            let applied = cpu_clock::counted(&self.shared.stats.cpu_nanos, || {
                let mut c = self.current_mut();
                let applied = match entry.payload {
                    EntryPayload::Blank => Applied::Nothing,
                    EntryPayload::Normal(p) => {
                        let applied = apply_proposal(&mut c.engine, &p);
                        proposal = Some(p);
                        applied
                    }
                    EntryPayload::Membership(m) => {
                        c.membership = StoredMembership::new(Some(log_id), m);
                        Applied::Nothing
                    }
                };
                c.last_applied = Some(log_id);
                applied
            });
            self.shared.stats.count(&applied);
            match (proposal, responder) {
                (Some(p), Some(r)) => {
                    self.publish(log_id.index(), &p, Cow::Borrowed(&applied));
                    r.send(applied);
                }
                (Some(p), None) => self.publish(log_id.index(), &p, Cow::Owned(applied)),
                (None, Some(r)) => r.send(applied),
                (None, None) => {}
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let mut restored = match snapshot.take_restored() {
            Some(restored) => restored,
            None => {
                let data = snapshot.clone();
                tokio::task::spawn_blocking(move || RestoredState::of(&data.to_bytes()))
                    .await
                    .map_err(io::Error::other)?
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            }
        };
        // A snapshot whose keys this node cannot open is refused before it
        // replaces anything: the node stops rather than sign nothing.
        restored.unlock(self.shared.kek.clone()).map_err(locked)?;
        let store = self.clone();
        let m = meta.clone();
        let engine = tokio::task::spawn_blocking(move || {
            let in_format_2 = store.shared.snapshots_in_format_2;
            let data = kept_form(in_format_2, &restored, snapshot);
            store
                .store_snapshot(m, data)
                .map(|()| restored.into_state())
        })
        .await
        .map_err(io::Error::other)??;
        let mut c = self.current_mut();
        c.engine = engine;
        c.last_applied = meta.last_log_id;
        c.membership = meta.last_membership.clone();
        tracing::info!(last_log_id = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let s = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(s.map(|s| Snapshot {
            meta: s.meta,
            snapshot: s.data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use aura_engine::sim::{WorkloadShape, state_after};

    use super::*;
    use crate::types::SnapshotMeta;

    /// The body of the snapshot a store opened in `dir` keeps in memory.
    fn kept(dir: &Path, format: LogFormat) -> Arc<SnapshotBody> {
        let kek = aura_engine::identity::Kek::from_material(&[7; 32]).unwrap();
        let store = EngineStore::open(dir, format, kek).unwrap();
        let stored = store.shared.snapshot.lock().unwrap();
        stored.as_ref().expect("a snapshot").data.clone()
    }

    #[test]
    fn a_snapshot_read_at_start_is_kept_as_pieces_of_the_restored_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_after(
            2,
            WorkloadShape {
                tenants: 1,
                missions: 60,
                ..WorkloadShape::default()
            },
        );
        let (files, _) = SnapshotFiles::open(dir.path()).unwrap();
        let meta = SnapshotMeta {
            last_log_id: None,
            last_membership: Default::default(),
        };
        files.write_pieces(&meta, &state.snapshot_pieces()).unwrap();

        let body = kept(dir.path(), LogFormat::NEWEST);
        assert!(matches!(*body, SnapshotBody::Pieces(_)), "{body:?}");
        assert_eq!(&*body.to_bytes(), &state.snapshot()[..]);
        // A node held below format 3 keeps what it read: it sends and
        // writes format 2.
        let held = kept(dir.path(), LogFormat::Sequences);
        assert!(matches!(*held, SnapshotBody::Whole(_)), "{held:?}");
    }
}
