//! A snapshot as pieces, so that a store can keep what never changes once.
//!
//! Most of a long-lived state is its tenants' sealed audit segments
//! (two thirds of it after a few thousand missions), and a sealed segment
//! never changes. A snapshot written as one file rewrites all of them
//! every time. Written as pieces, the segments come out as shared
//! references to the bytes the state already holds, each with a name
//! that identifies it across snapshots, and everything else as bytes:
//! put back together in order, the pieces are exactly
//! [`EngineState::snapshot`]'s bytes.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::audit::segment::SealedSegment;
use crate::ids::TenantId;
use crate::machine::state::EngineState;

/// One piece of a snapshot's bytes.
#[derive(Clone, Debug)]
pub enum SnapshotPiece {
    Bytes(Vec<u8>),
    Segment(SegmentPiece),
}

/// A sealed audit segment's JSON, as the snapshot carries it.
#[derive(Clone, Debug)]
pub struct SegmentPiece {
    name: String,
    json: Arc<RawValue>,
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

impl SnapshotPiece {
    pub fn bytes(&self) -> &[u8] {
        match self {
            SnapshotPiece::Bytes(b) => b,
            SnapshotPiece::Segment(s) => s.bytes(),
        }
    }
}

impl EngineState {
    /// The snapshot ([`EngineState::snapshot`]) as pieces.
    pub fn snapshot_pieces(&self) -> Vec<SnapshotPiece> {
        let segments = self
            .tenants
            .values()
            .flat_map(|t| t.audit.sealed().iter().map(move |s| (&t.id, s)));
        let mut out = PieceWriter::new(segments);
        self.write_snapshot_to(&mut out);
        out.finish()
    }
}

/// Collects the JSON writer's output into pieces. serde_json writes a
/// raw value (which is how a sealed segment serializes) with one
/// `write_all` of the value's own bytes, so a write of exactly a sealed
/// segment's bytes, at their address, is that segment, and becomes a
/// shared piece. Any other write is copied; were serde_json to write a
/// segment some other way, the pieces would still be the snapshot, only
/// with the segment copied into bytes (`segments_come_out_shared` would
/// say so).
struct PieceWriter {
    segments: HashMap<(usize, usize), SegmentPiece>,
    /// The shortest segment's length: serde_json makes millions of small
    /// writes, and none that short can be a segment.
    shortest: usize,
    pieces: Vec<SnapshotPiece>,
    bytes: Vec<u8>,
}

impl PieceWriter {
    fn new<'a>(segments: impl Iterator<Item = (&'a TenantId, &'a SealedSegment)>) -> PieceWriter {
        let segments = segments
            .map(|(tenant, s)| {
                let summary = s.summary();
                let piece = SegmentPiece {
                    name: format!("{tenant}.{}.{}", summary.first_seq, summary.last_hash),
                    json: s.body().clone(),
                };
                let at = piece.bytes();
                ((at.as_ptr() as usize, at.len()), piece)
            })
            .collect::<HashMap<_, _>>();
        PieceWriter {
            shortest: segments
                .keys()
                .map(|(_, len)| *len)
                .min()
                .unwrap_or(usize::MAX),
            segments,
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
        match self.segments.remove(&(buf.as_ptr() as usize, buf.len())) {
            Some(segment) => {
                if !self.bytes.is_empty() {
                    let bytes = std::mem::take(&mut self.bytes);
                    self.pieces.push(SnapshotPiece::Bytes(bytes));
                }
                self.pieces.push(SnapshotPiece::Segment(segment));
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
    use crate::sim::{WorkloadShape, state_after};

    use super::SnapshotPiece;

    #[test]
    fn segments_come_out_shared_and_the_pieces_are_the_snapshot() {
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
                SnapshotPiece::Bytes(_) => None,
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
    }
}
