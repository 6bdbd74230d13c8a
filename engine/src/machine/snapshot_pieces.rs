//! A snapshot as pieces, so that a store can keep what never changes once.
//!
//! Most of a long-lived state is what never changes again: its tenants'
//! sealed audit segments (two thirds of it after a few thousand
//! missions), closed missions and issued execution tokens (most of the
//! rest). A snapshot written as one file rewrites all of them every time.
//! Written as pieces, each of those comes out as a shared reference to
//! the bytes the state already holds, with a name or a hash that
//! identifies it across snapshots, and everything else as bytes: put back
//! together in order, the pieces are exactly [`EngineState::snapshot`]'s
//! bytes. Building a snapshot then copies only what is still open.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::audit::segment::SealedSegment;
use crate::digest::Digest;
use crate::ids::TenantId;
use crate::machine::kept_text::KeptText;
use crate::machine::state::EngineState;

/// One piece of a snapshot's bytes.
#[derive(Clone, Debug)]
pub enum SnapshotPiece {
    Bytes(Vec<u8>),
    Segment(SegmentPiece),
    Kept(KeptPiece),
}

/// A sealed audit segment's JSON, as the snapshot carries it.
#[derive(Clone, Debug)]
pub struct SegmentPiece {
    name: String,
    json: Arc<Box<RawValue>>,
}

impl SegmentPiece {
    /// `{tenant}.{first sequence number}.{last entry hash}`: the same
    /// segment has the same name in every snapshot and on every replica,
    /// and no two segments share one (an entry hash covers its tenant
    /// and sequence number).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn bytes(&self) -> &[u8] {
        self.json.get().as_bytes()
    }
}

/// A closed mission's or an issued token's JSON, as the snapshot carries
/// it: the text kept of it ([`crate::machine::kept_text`]).
#[derive(Clone)]
pub struct KeptPiece {
    text: Arc<KeptText>,
}

impl KeptPiece {
    pub fn bytes(&self) -> &[u8] {
        self.text.bytes()
    }

    /// The SHA-256 of [`KeptPiece::bytes`], made once with them.
    pub fn sha256(&self) -> &Digest {
        &self.text.sha256
    }
}

impl std::fmt::Debug for KeptPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeptPiece({} bytes)", self.bytes().len())
    }
}

impl SnapshotPiece {
    pub fn bytes(&self) -> &[u8] {
        match self {
            SnapshotPiece::Bytes(b) => b,
            SnapshotPiece::Segment(s) => s.bytes(),
            SnapshotPiece::Kept(k) => k.bytes(),
        }
    }
}

impl EngineState {
    /// The snapshot ([`EngineState::snapshot`]) as pieces.
    pub fn snapshot_pieces(&self) -> Vec<SnapshotPiece> {
        self.snapshot_pieces_with(self.digest())
    }

    /// The same, with this state's digest already known.
    pub(crate) fn snapshot_pieces_with(&self, digest: Digest) -> Vec<SnapshotPiece> {
        let segments = self
            .tenants
            .values()
            .flat_map(|t| t.audit.sealed().iter().map(move |s| (&t.id, s)));
        // A closed mission's is made now if it closed since the last
        // snapshot, before the writer needs to know where each text is.
        let kept = self.tenants.values().flat_map(|t| {
            let closed = t.missions.values().filter_map(|m| m.closed_form());
            closed.map(|e| &e.text).chain(t.tokens.texts())
        });
        let mut out = PieceWriter::new(segments, kept);
        self.write_snapshot_to(&mut out, digest);
        out.finish()
    }
}

/// Collects the JSON writer's output into pieces. serde_json writes a
/// raw value (which is how a sealed segment and a kept text serialize)
/// with one `write_all` of the value's own bytes, so a write of exactly
/// such bytes, at their address, is that segment or text, and becomes a
/// shared piece. Any other write is copied; were
/// serde_json to write a raw value some other way, the pieces would still
/// be the snapshot, only with the value copied into bytes (the tests
/// `..._come_out_shared...` would say so).
struct PieceWriter {
    shared: HashMap<(usize, usize), SnapshotPiece>,
    /// The shortest shared piece's length: serde_json makes millions of
    /// small writes, and none that short can be one.
    shortest: usize,
    pieces: Vec<SnapshotPiece>,
    bytes: Vec<u8>,
}

impl PieceWriter {
    fn new<'a>(
        segments: impl Iterator<Item = (&'a TenantId, &'a SealedSegment)>,
        kept: impl Iterator<Item = &'a Arc<KeptText>>,
    ) -> PieceWriter {
        let segments = segments.map(|(tenant, s)| {
            let summary = s.summary();
            SnapshotPiece::Segment(SegmentPiece {
                name: format!("{tenant}.{}.{}", summary.first_seq, summary.last_hash),
                json: s.body().clone(),
            })
        });
        let kept = kept.map(|text| SnapshotPiece::Kept(KeptPiece { text: text.clone() }));
        let shared = segments
            .chain(kept)
            .map(|piece| {
                let at = piece.bytes();
                ((at.as_ptr() as usize, at.len()), piece)
            })
            .collect::<HashMap<_, _>>();
        PieceWriter {
            shortest: shared
                .keys()
                .map(|(_, len)| *len)
                .min()
                .unwrap_or(usize::MAX),
            shared,
            pieces: Vec::new(),
            bytes: Vec::new(),
        }
    }

    fn finish(mut self) -> Vec<SnapshotPiece> {
        if !self.bytes.is_empty() {
            self.pieces.push(SnapshotPiece::Bytes(self.bytes));
        }
        self.pieces
    }
}

impl io::Write for PieceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() < self.shortest {
            self.bytes.extend_from_slice(buf);
            return Ok(buf.len());
        }
        match self.shared.remove(&(buf.as_ptr() as usize, buf.len())) {
            Some(piece) => {
                if !self.bytes.is_empty() {
                    let bytes = std::mem::take(&mut self.bytes);
                    self.pieces.push(SnapshotPiece::Bytes(bytes));
                }
                self.pieces.push(piece);
            }
            None => self.bytes.extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::digest::Digest;
    use crate::sim::{WorkloadShape, state_after};

    use super::SnapshotPiece;

    #[test]
    fn segments_closed_missions_and_tokens_come_out_shared_and_the_pieces_are_the_snapshot() {
        let state = state_after(
            7,
            WorkloadShape {
                tenants: 1,
                missions: 300,
                ..WorkloadShape::default()
            },
        );
        let sealed: usize = state.tenants().map(|t| t.audit().sealed().len()).sum();
        assert!(sealed >= 2, "the workload seals segments: {sealed}");
        let pieces = state.snapshot_pieces();
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.bytes()).copied().collect();
        assert_eq!(joined, state.snapshot());
        let names: Vec<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                SnapshotPiece::Segment(s) => Some(s.name()),
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), sealed, "every sealed segment is shared");
        let t = state.tenants().next().unwrap();
        let first = t.audit().sealed()[0].summary();
        assert_eq!(
            names[0],
            format!("{}.0.{}", t.id(), first.last_hash),
            "{names:?}"
        );
        assert_eq!(first.first_seq, 0);

        // Every closed mission and every token is its kept text, not a
        // copy of it.
        let closed: Vec<&[u8]> = t
            .missions()
            .values()
            .filter_map(|m| m.closed_form())
            .map(|e| e.text.bytes())
            .collect();
        assert!(closed.len() >= 10, "the workload closes missions");
        let tokens: Vec<&[u8]> = t.tokens.texts().map(|k| k.bytes()).collect();
        assert!(tokens.len() >= 10, "the workload issues tokens");
        let shared: Vec<&[u8]> = pieces
            .iter()
            .filter_map(|p| match p {
                SnapshotPiece::Kept(k) => {
                    assert_eq!(*k.sha256(), Digest::of(k.bytes()));
                    Some(k.bytes())
                }
                _ => None,
            })
            .collect();
        let kept: Vec<&[u8]> = closed.into_iter().chain(tokens).collect();
        assert_eq!(shared.len(), kept.len(), "every kept text is shared");
        for (a, b) in shared.iter().zip(&kept) {
            assert!(std::ptr::eq(*a, *b), "a kept text was copied");
        }
    }
}
