//! Snapshots of the whole engine state, for Raft snapshot transfer and for
//! fast restarts. A snapshot carries the state digest it was taken at and
//! is refused on restore if the state no longer matches it.
//!
//! Format 3 carries the state digest of version 3. Format 2 (the same
//! JSON, with the version 2 digest) is still restored, so a node upgraded
//! in place reads the snapshot it left, and a member not yet upgraded can
//! send it one; and still written, for members that read no newer one.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::machine::state::EngineState;
use crate::machine::state_digest_v2;

pub const SNAPSHOT_FORMAT: &str = "aura.engine-snapshot/3";
const SNAPSHOT_FORMAT_V2: &str = "aura.engine-snapshot/2";

/// How every snapshot this version writes in format 2 begins.
const FORMAT_2_START: &[u8] = br#"{"format":"aura.engine-snapshot/2""#;

#[derive(Serialize)]
struct SnapshotOut<'a> {
    format: &'static str,
    digest: Digest,
    state: &'a EngineState,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotIn {
    format: String,
    digest: Digest,
    state: EngineState,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is not readable: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("snapshot format `{0}` is neither {SNAPSHOT_FORMAT} nor {SNAPSHOT_FORMAT_V2}")]
    Format(String),
    #[error("snapshot cannot be restored: {0}")]
    Derived(String),
    #[error("snapshot state does not match its digest (expected {expected}, found {found})")]
    DigestMismatch { expected: Digest, found: Digest },
}

impl EngineState {
    /// The snapshot in one buffer. A node builds its snapshots as pieces
    /// ([`EngineState::snapshot_pieces`]), which are these bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_snapshot_to(&mut out, self.digest());
        out
    }

    /// The snapshot in format 2, which versions before format 3 read; it
    /// costs the version 2 digest, which encodes every mission whole.
    pub fn snapshot_in_format_2(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_snapshot_as(&mut out, SNAPSHOT_FORMAT_V2, state_digest_v2::digest(self));
        out
    }

    /// The snapshot, into `out`; `digest` is this state's.
    pub(crate) fn write_snapshot_to(&self, out: impl std::io::Write, digest: Digest) {
        self.write_snapshot_as(out, SNAPSHOT_FORMAT, digest);
    }

    fn write_snapshot_as(&self, out: impl std::io::Write, format: &'static str, digest: Digest) {
        serde_json::to_writer(
            out,
            &SnapshotOut {
                format,
                digest,
                state: self,
            },
        )
        .expect("engine state serializes");
    }

    /// `snapshot` in format 2, for a member whose version reads no newer
    /// one: as it is if it already is, else restored (and so checked) and
    /// written again.
    pub fn snapshot_as_format_2(snapshot: &[u8]) -> Result<Cow<'_, [u8]>, SnapshotError> {
        if snapshot.starts_with(FORMAT_2_START) {
            return Ok(Cow::Borrowed(snapshot));
        }
        Ok(Cow::Owned(
            EngineState::restore(snapshot)?.snapshot_in_format_2(),
        ))
    }

    pub fn restore(bytes: &[u8]) -> Result<EngineState, SnapshotError> {
        RestoredState::of(bytes).map(RestoredState::into_state)
    }
}

/// A state restored from a snapshot and checked against the snapshot's
/// digest. When that is the digest this version writes (format 3), it is
/// kept: writing the state again right away (a node keeps what it read or
/// installed as pieces of the state) then need not compute it a second
/// time, which at start-up would be a second pass over the whole state.
/// The state is only handed out whole ([`RestoredState::into_state`]), so
/// the digest kept cannot outlive a change to it.
#[derive(Debug)]
pub struct RestoredState {
    state: EngineState,
    digest: Option<Digest>,
}

impl RestoredState {
    pub fn of(bytes: &[u8]) -> Result<RestoredState, SnapshotError> {
        let snap: SnapshotIn = serde_json::from_slice(bytes)?;
        let digest: fn(&EngineState) -> Digest = match snap.format.as_str() {
            SNAPSHOT_FORMAT => EngineState::digest,
            SNAPSHOT_FORMAT_V2 => state_digest_v2::digest,
            _ => return Err(SnapshotError::Format(snap.format)),
        };
        let mut state = snap.state;
        for t in state.tenants.values_mut() {
            t.rebuild_derived().map_err(SnapshotError::Derived)?;
        }
        state.keys = super::state::KeyIndex::of(state.tenants.values());
        let found = digest(&state);
        if found != snap.digest {
            return Err(SnapshotError::DigestMismatch {
                expected: snap.digest,
                found,
            });
        }
        let current = snap.format == SNAPSHOT_FORMAT;
        Ok(RestoredState {
            state,
            digest: current.then_some(found),
        })
    }

    /// Opens the state's sealed tenant keys ([`EngineState::unlock`]).
    pub fn unlock(&mut self, kek: crate::identity::Kek) -> Result<(), super::state::LockedKey> {
        self.state.unlock(kek)
    }

    pub fn into_state(self) -> EngineState {
        self.state
    }

    /// The state's snapshot as pieces ([`EngineState::snapshot_pieces`]).
    pub fn snapshot_pieces(&self) -> Vec<crate::machine::snapshot_pieces::SnapshotPiece> {
        let digest = self.digest.unwrap_or_else(|| self.state.digest());
        self.state.snapshot_pieces_with(digest)
    }
}
