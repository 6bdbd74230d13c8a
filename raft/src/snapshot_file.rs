//! The latest snapshot on disk.
//!
//! Most of a long-lived state is sealed audit segments, which never
//! change; a snapshot written as one file rewrote all of them every time,
//! and writing them was the largest part of a snapshot's cost. So a
//! snapshot is stored in pieces:
//!
//! - `snapshot.bin`: a JSON header line (format `aura.raft-snapshot/2`,
//!   the Raft metadata, the body's length, its pieces in order and the
//!   SHA-256 of the bytes after the header), then the pieces that are
//!   bytes, back to back.
//! - `segments/{name}.json`: one file per sealed audit segment
//!   ([`SegmentPiece`]), and one per pack of closed missions or tokens
//!   ([`crate::snapshot_packs`]), written by the first snapshot that holds
//!   it and shared by every later one. The header carries each one's
//!   length and SHA-256, checked when it is read. A pack is named like a
//!   segment file, so a version that knows only segments reads it.
//!
//! Put back together in order the pieces are the engine snapshot, which
//! carries and checks the state digest. A snapshot received from the
//! leader is written in pieces of the state it installs, like one built
//! here. Every snapshot of a node held below log format 3 (which older
//! versions must still read) is written whole in format
//! `aura.raft-snapshot/1`: the header, then the body. Both are read.
//!
//! Every file is written to a temporary name, synced and renamed, and
//! `snapshot.bin` last: a crash leaves the old snapshot or the new one.
//! Segment files that the snapshot now on disk does not name are removed
//! after it is in place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aura_engine::Digest;
use aura_engine::machine::snapshot_pieces::SnapshotPiece;
use serde::{Deserialize, Serialize};

use crate::log_file::sync_dir;
use crate::snapshot_packs;
use crate::types::SnapshotMeta;

const FILE: &str = "snapshot.bin";
const SEGMENTS: &str = "segments";
const WHOLE: &str = "aura.raft-snapshot/1";
const IN_PIECES: &str = "aura.raft-snapshot/2";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    meta: SnapshotMeta,
    /// The length of the engine snapshot.
    len: u64,
    /// Of the bytes after the header line.
    sha256: String,
    /// Absent in format 1, whose body is all after the header.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Piece {
    /// The next `len` bytes after the header.
    Bytes { len: u64 },
    /// A file in `segments/`.
    Segment(SegmentFile),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentFile {
    name: String,
    len: u64,
    sha256: String,
}

/// The snapshot files in a node's Raft directory.
#[derive(Debug)]
pub(crate) struct SnapshotFiles {
    dir: PathBuf,
    /// The segment files the snapshot on disk names: those a new snapshot
    /// need not write again. Held for the whole of a write, so that a
    /// snapshot installed while another is being written cannot remove
    /// the segment files the other names.
    on_disk: Mutex<BTreeMap<String, SegmentFile>>,
    /// [`snapshot_packs::PACK_BYTES`]; tests make packs smaller.
    pack_bytes: u32,
}

/// A snapshot read back: its Raft metadata and the engine snapshot.
pub(crate) type Found = (SnapshotMeta, Vec<u8>);

/// What one write did, for the node's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes written to disk: segment files, packs and `snapshot.bin`.
    pub bytes: u64,
    pub segment_files: u64,
    pub pack_files: u64,
}

impl SnapshotFiles {
    /// The files in `dir`, and the snapshot they hold if any.
    pub(crate) fn open(dir: &Path) -> io::Result<(SnapshotFiles, Option<Found>)> {
        let files = SnapshotFiles {
            dir: dir.to_owned(),
            on_disk: Mutex::new(BTreeMap::new()),
            pack_bytes: snapshot_packs::PACK_BYTES,
        };
        let found = files.read()?;
        Ok((files, found))
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn segment_path(&self, name: &str) -> PathBuf {
        self.dir.join(SEGMENTS).join(format!("{name}.json"))
    }

    fn on_disk(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SegmentFile>> {
        self.on_disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> io::Result<Option<Found>> {
        let path = self.path();
        let mut bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let invalid = |file: &Path, why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {why}", file.display()),
            )
        };
        let nl = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| invalid(&path, "no snapshot header".into()))?;
        let header: Header = serde_json::from_slice(&bytes[..nl])
            .map_err(|e| invalid(&path, format!("bad snapshot header: {e}")))?;
        let after = &bytes[nl + 1..];
        if Digest::of(after).to_hex() != header.sha256 {
            return Err(invalid(
                &path,
                "snapshot body does not match its header".into(),
            ));
        }
        let body = match header.format.as_str() {
            // The body in place of the file's bytes: a start-up holds one
            // copy of the whole snapshot, not two.
            WHOLE if header.pieces.is_empty() => {
                bytes.drain(..=nl);
                bytes
            }
            IN_PIECES => self.join(&header.pieces, after, header.len)?,
            other => {
                return Err(invalid(
                    &path,
                    format!("snapshot format `{other}` is neither {WHOLE} nor {IN_PIECES}"),
                ));
            }
        };
        if body.len() as u64 != header.len {
            return Err(invalid(
                &path,
                "snapshot body does not match its header".into(),
            ));
        }
        *self.on_disk() = segments_of(&header.pieces);
        Ok(Some((header.meta, body)))
    }

    /// The body from its pieces: `bytes` from after the header, segments
    /// from their files, each checked against the header.
    fn join(&self, pieces: &[Piece], mut bytes: &[u8], len: u64) -> io::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        for piece in pieces {
            match piece {
                Piece::Bytes { len } => {
                    let len = usize::try_from(*len).unwrap_or(usize::MAX);
                    let (this, rest) = bytes.split_at_checked(len).ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: the header names more bytes than follow it", FILE),
                        )
                    })?;
                    body.extend_from_slice(this);
                    bytes = rest;
                }
                Piece::Segment(s) => {
                    let path = self.segment_path(&s.name);
                    let data = std::fs::read(&path).map_err(|e| {
                        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })?;
                    if data.len() as u64 != s.len || Digest::of(&data).to_hex() != s.sha256 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: does not match the snapshot header", path.display()),
                        ));
                    }
                    body.extend_from_slice(&data);
                }
            }
        }
        if !bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{FILE}: bytes follow the header that no piece names"),
            ));
        }
        Ok(body)
    }

    /// Writes `body` whole (format 1).
    pub(crate) fn write_whole(&self, meta: &SnapshotMeta, body: &[u8]) -> io::Result<Written> {
        let header = Header {
            format: WHOLE.into(),
            meta: meta.clone(),
            len: body.len() as u64,
            sha256: Digest::of(body).to_hex(),
            pieces: Vec::new(),
        };
        let mut on_disk = self.on_disk();
        let written = self.write_file(&mut on_disk, &header, &[body])?;
        Ok(Written {
            bytes: written,
            ..Written::default()
        })
    }

    /// Writes the snapshot `pieces` make (format 2): only the segment
    /// files and packs of kept texts not on disk yet, then
    /// `snapshot.bin`.
    pub(crate) fn write_pieces(
        &self,
        meta: &SnapshotMeta,
        pieces: &[SnapshotPiece],
    ) -> io::Result<Written> {
        let mut written = Written::default();
        let mut on_disk = self.on_disk();
        let mut entries = Vec::with_capacity(pieces.len());
        let mut bytes: Vec<&[u8]> = Vec::new();
        let mut new_files = false;
        let mut at = 0;
        while at < pieces.len() {
            let (name, shared, is_pack) = match &pieces[at] {
                SnapshotPiece::Bytes(b) => {
                    entries.push(Piece::Bytes {
                        len: b.len() as u64,
                    });
                    bytes.push(b);
                    at += 1;
                    continue;
                }
                SnapshotPiece::Segment(s) => {
                    at += 1;
                    (s.name().to_owned(), &pieces[at - 1..at], false)
                }
                SnapshotPiece::Kept(_) => {
                    let end = snapshot_packs::pack_end(pieces, at, self.pack_bytes);
                    let pack = &pieces[at..end];
                    at = end;
                    (snapshot_packs::pack_name(pack), pack, true)
                }
            };
            let file = match on_disk.get(&name) {
                Some(file) => file.clone(),
                None => {
                    if !new_files {
                        std::fs::create_dir_all(self.dir.join(SEGMENTS))?;
                        new_files = true;
                    }
                    let parts: Vec<&[u8]> = shared.iter().map(|p| p.bytes()).collect();
                    write_renamed(&self.segment_path(&name), &parts)?;
                    let len = parts.iter().map(|p| p.len() as u64).sum();
                    written.bytes += len;
                    if is_pack {
                        written.pack_files += 1;
                    } else {
                        written.segment_files += 1;
                    }
                    SegmentFile {
                        name,
                        len,
                        sha256: Digest::of_parts(&parts).to_hex(),
                    }
                }
            };
            entries.push(Piece::Segment(file));
        }
        if new_files {
            // The new files' names are durable before anything names them.
            sync_dir(&self.segment_path("any"))?;
        }
        let header = Header {
            format: IN_PIECES.into(),
            meta: meta.clone(),
            len: pieces.iter().map(|p| p.bytes().len() as u64).sum(),
            sha256: Digest::of_parts(&bytes).to_hex(),
            pieces: entries,
        };
        written.bytes += self.write_file(&mut on_disk, &header, &bytes)?;
        Ok(written)
    }

    /// Puts `snapshot.bin` in place, then removes the segment files it
    /// does not name.
    fn write_file(
        &self,
        on_disk: &mut BTreeMap<String, SegmentFile>,
        header: &Header,
        bytes: &[&[u8]],
    ) -> io::Result<u64> {
        let mut head = serde_json::to_vec(header)?;
        head.push(b'\n');
        let mut parts = vec![head.as_slice()];
        parts.extend_from_slice(bytes);
        write_renamed(&self.path(), &parts)?;
        sync_dir(&self.path())?;
        let segments = segments_of(&header.pieces);
        self.remove_segments_but(&segments);
        *on_disk = segments;
        Ok(parts.iter().map(|p| p.len() as u64).sum())
    }

    /// Removing is tidying: a file left behind is removed after the next
    /// snapshot, so a failure is only logged.
    fn remove_segments_but(&self, keep: &BTreeMap<String, SegmentFile>) {
        let dir = self.dir.join(SEGMENTS);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list snapshot segments");
                return;
            }
        };
        let kept: BTreeSet<String> = keep.keys().map(|n| format!("{n}.json")).collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !kept.contains(&name)
                && let Err(e) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove an old snapshot segment");
            }
        }
    }
}

fn segments_of(pieces: &[Piece]) -> BTreeMap<String, SegmentFile> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Segment(s) => Some((s.name.clone(), s.clone())),
            Piece::Bytes { .. } => None,
        })
        .collect()
}

/// Writes `parts` to a temporary file, syncs it and renames it to `path`;
/// the caller syncs the directory.
fn write_renamed(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use aura_engine::machine::EngineState;
    use aura_engine::sim::{WorkloadShape, generate};

    use super::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: None,
            last_membership: Default::default(),
        }
    }

    /// Segment files and packs.
    fn segment_files(dir: &Path) -> usize {
        std::fs::read_dir(dir.join(SEGMENTS)).map_or(0, |d| d.count())
    }

    fn pack_files(dir: &Path) -> usize {
        pack_names(&header(dir)).len()
    }

    fn header(dir: &Path) -> Header {
        let bytes = std::fs::read(dir.join(FILE)).unwrap();
        let nl = bytes.iter().position(|b| *b == b'\n').unwrap();
        serde_json::from_slice(&bytes[..nl]).unwrap()
    }

    /// The packs `header` names, and their lengths.
    fn pack_names(header: &Header) -> BTreeMap<String, u64> {
        segments_of(&header.pieces)
            .into_values()
            .filter(|f| f.name.starts_with(snapshot_packs::PACK_PREFIX))
            .map(|f| (f.name, f.len))
            .collect()
    }

    fn sealed(state: &EngineState) -> usize {
        state.tenants().map(|t| t.audit().sealed().len()).sum()
    }

    /// A state that seals more segments as the rest of `commands` is
    /// applied.
    fn workload() -> (EngineState, Vec<aura_engine::machine::Command>) {
        let shape = WorkloadShape {
            tenants: 1,
            missions: 400,
            ..WorkloadShape::default()
        };
        let mut commands = generate(9, shape);
        let rest = commands.split_off(commands.len() / 2);
        let mut state = EngineState::new();
        for cmd in &commands {
            let _ = state.apply(cmd);
        }
        (state, rest)
    }

    #[test]
    fn a_sealed_segment_is_written_once_and_every_snapshot_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (mut state, rest) = workload();
        let (files, none) = SnapshotFiles::open(dir.path()).unwrap();
        assert!(none.is_none());
        let before = sealed(&state);
        assert!(before >= 1);
        let w = files
            .write_pieces(&meta(), &state.snapshot_pieces())
            .unwrap();
        assert_eq!(w.segment_files, before as u64);
        for cmd in &rest {
            let _ = state.apply(cmd);
        }
        let after = sealed(&state);
        assert!(after > before, "the rest seals more: {before} then {after}");
        let w = files
            .write_pieces(&meta(), &state.snapshot_pieces())
            .unwrap();
        assert_eq!(w.segment_files, (after - before) as u64, "only new ones");
        // At most everything but the segments already on disk, and a
        // header.
        let old: usize = state
            .tenants()
            .flat_map(|t| &t.audit().sealed()[..before])
            .map(|s| s.body().get().len())
            .sum();
        let rewritten = (state.snapshot().len() - old) as u64;
        assert!(w.bytes < rewritten + 64 * 1024, "{w:?}");
        assert_eq!(segment_files(dir.path()) - pack_files(dir.path()), after);
        let (_, found) = SnapshotFiles::open(dir.path()).unwrap();
        assert_eq!(found.unwrap().1, state.snapshot());

        // A snapshot written whole leaves no segment files behind, and
        // reads back.
        files.write_whole(&meta(), &state.snapshot()).unwrap();
        assert_eq!(segment_files(dir.path()), 0);
        let (files, found) = SnapshotFiles::open(dir.path()).unwrap();
        assert_eq!(found.unwrap().1, state.snapshot());
        // The next in pieces writes every segment again.
        let w = files
            .write_pieces(&meta(), &state.snapshot_pieces())
            .unwrap();
        assert_eq!(w.segment_files, after as u64);
    }

    #[test]
    fn closed_missions_and_tokens_are_packed_and_a_pack_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        // One tenant's missions all run to the end, then another tenant's
        // run: the first tenant's packs stay as they were.
        let shape = |tenants| WorkloadShape {
            tenants,
            missions: 150,
            ..WorkloadShape::default()
        };
        let mut state = EngineState::new();
        for cmd in &generate(9, shape(1)) {
            let _ = state.apply(cmd);
        }
        let second_tenant = aura_engine::sim::tenant_id(1);
        let rest: Vec<_> = generate(9, shape(2))
            .into_iter()
            .filter(|c| c.tenant == second_tenant)
            .collect();
        let (mut files, _) = SnapshotFiles::open(dir.path()).unwrap();
        files.pack_bytes = 64 * 1024;
        let w = files
            .write_pieces(&meta(), &state.snapshot_pieces())
            .unwrap();
        let first = pack_names(&header(dir.path()));
        assert!(first.len() >= 4, "{first:?}");
        assert_eq!(w.pack_files, first.len() as u64);
        let closed = |s: &EngineState| {
            s.tenants()
                .flat_map(|t| t.missions().values())
                .filter(|m| m.state().is_closed())
                .count()
        };
        let closed_before = closed(&state);
        assert!(first.len() < closed_before, "texts share packs");

        for cmd in &rest {
            let _ = state.apply(cmd);
        }
        assert!(closed(&state) > closed_before);
        let w = files
            .write_pieces(&meta(), &state.snapshot_pieces())
            .unwrap();
        let second = pack_names(&header(dir.path()));
        let kept: Vec<&String> = first.keys().filter(|n| second.contains_key(*n)).collect();
        assert_eq!(kept.len(), first.len(), "unchanged packs keep their names");
        assert!(second.len() > first.len());
        // Only the packs not on disk before were written, and the bytes
        // written are the snapshot's but for the files kept.
        assert_eq!(w.pack_files, (second.len() - kept.len()) as u64);
        let kept_bytes: u64 = kept.iter().map(|n| first[*n]).sum();
        let old_segments: usize = segments_of(&header(dir.path()).pieces)
            .values()
            .filter(|f| !f.name.starts_with(snapshot_packs::PACK_PREFIX))
            .count()
            - w.segment_files as usize;
        assert!(old_segments >= 1);
        assert!(
            w.bytes < state.snapshot().len() as u64 - kept_bytes + 64 * 1024,
            "{w:?}"
        );
        assert_eq!(pack_files(dir.path()), second.len());
        let (_, found) = SnapshotFiles::open(dir.path()).unwrap();
        assert_eq!(found.unwrap().1, state.snapshot());
    }

    /// A snapshot of [`workload`]'s first half, written in pieces.
    fn written() -> (tempfile::TempDir, EngineState, SnapshotFiles) {
        let dir = tempfile::tempdir().unwrap();
        let (state, _) = workload();
        let (files, _) = SnapshotFiles::open(dir.path()).unwrap();
        files
            .write_pieces(&meta(), &state.snapshot_pieces())
            .unwrap();
        (dir, state, files)
    }

    #[test]
    fn a_damaged_or_missing_segment_file_is_named() {
        let (dir, _, _) = written();
        let segment = std::fs::read_dir(dir.path().join(SEGMENTS))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let good = std::fs::read(&segment).unwrap();
        let mut bad = good.clone();
        bad[10] ^= 1;
        std::fs::write(&segment, &bad).unwrap();
        let e = SnapshotFiles::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&segment.display().to_string()), "{e}");
        assert!(e.contains("does not match"), "{e}");
        std::fs::remove_file(&segment).unwrap();
        let e = SnapshotFiles::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&segment.display().to_string()), "{e}");
        std::fs::write(&segment, &good).unwrap();
        assert!(SnapshotFiles::open(dir.path()).unwrap().1.is_some());
    }

    #[test]
    fn a_leftover_segment_file_is_removed_by_the_next_snapshot() {
        let (dir, state, files) = written();
        let n = segment_files(dir.path());
        // As a crash between a segment file and `snapshot.bin` leaves.
        let stray = dir.path().join(SEGMENTS).join("other.0.x.json");
        std::fs::write(&stray, b"[]").unwrap();
        files
            .write_pieces(&meta(), &state.snapshot_pieces())
            .unwrap();
        assert!(!stray.exists());
        assert_eq!(segment_files(dir.path()), n);
    }
}
