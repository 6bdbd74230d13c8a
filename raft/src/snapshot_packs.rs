//! Which closed missions a snapshot keeps together in one file.
//!
//! A closed mission seldom changes again, so, like a sealed audit segment,
//! it need not be written by every snapshot. One file per mission would
//! be tens of thousands of files, so consecutive closed missions (in the
//! snapshot's order, with the bytes between them, which are the next
//! one's key) are packed. Where a pack ends is decided by the missions
//! themselves, not by counting: a pack ends after a mission whose text's
//! hash has its first byte divisible by [`MISSIONS_PER_PACK`], or where
//! the run of closed missions ends. A mission that closes or changes then
//! changes its own pack and at most the one after it, not every pack
//! after it, and a pack that did not change has the same name as before
//! and is not written again.

use aura_engine::machine::snapshot_pieces::SnapshotPiece;
use sha2::{Digest as _, Sha256};

/// The average number of missions in a pack; a power of two up to 128.
pub(crate) const MISSIONS_PER_PACK: u8 = 32;

/// The bytes between two closed missions are the second one's key, a
/// comma and a colon: this long at most (ids are at most 128 bytes).
const SEPARATOR_MAX: usize = 160;

/// Names of packs start with a character no tenant id starts with, so a
/// pack and a sealed segment (`{tenant}.…`) never share a name.
const PACK_PREFIX: &str = "_missions.";

/// The end (exclusive) of the pack that starts at `pieces[start]`, a
/// closed mission.
pub(crate) fn pack_end(pieces: &[SnapshotPiece], start: usize) -> usize {
    let mut end = start + 1;
    loop {
        if let Some(SnapshotPiece::ClosedMission(last)) = pieces.get(end - 1)
            && last.sha256().0[0] % MISSIONS_PER_PACK == 0
        {
            return end;
        }
        match (pieces.get(end), pieces.get(end + 1)) {
            (Some(SnapshotPiece::Bytes(between)), Some(SnapshotPiece::ClosedMission(_)))
                if between.len() <= SEPARATOR_MAX =>
            {
                end += 2
            }
            _ => return end,
        }
    }
}

/// A pack's name: a hash of what is in it, made from the hashes its
/// missions carry and the few bytes between them, so naming a pack does
/// not read it.
pub(crate) fn pack_name(pack: &[SnapshotPiece]) -> String {
    let mut sha = Sha256::new();
    for piece in pack {
        match piece {
            SnapshotPiece::ClosedMission(m) => {
                sha.update([b'm']);
                sha.update(m.sha256().0);
            }
            other => {
                let bytes = other.bytes();
                sha.update([b'b']);
                sha.update((bytes.len() as u64).to_le_bytes());
                sha.update(bytes);
            }
        }
    }
    format!(
        "{PACK_PREFIX}{}",
        aura_engine::Digest(sha.finalize().into()).to_hex()
    )
}
