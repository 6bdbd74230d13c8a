//! Which kept texts a snapshot stores together in one file.
//!
//! A closed mission or an issued token never changes again (its text is
//! kept, [`SnapshotPiece::Kept`]), so, like a sealed audit segment, it
//! need not be written by every snapshot. One file each would be tens of
//! thousands of files, so consecutive kept texts (in the snapshot's
//! order, with the bytes between them, which are the next one's key) are
//! packed. Where a pack ends is decided by the texts themselves, not by
//! counting: a pack ends after a text whose hash, read as a number, falls
//! below its length in the pack size (so packs hold about that many
//! bytes whatever the texts' sizes), or where the run of kept texts ends.
//! A mission that closes or changes then changes its own pack and at most
//! the one after it, not every pack after it, and a pack that did not
//! change has the same name as before and is not written again.

use aura_engine::machine::snapshot_pieces::{KeptPiece, SnapshotPiece};
use sha2::{Digest as _, Sha256};

/// The bytes a pack holds on average. Creating a file costs more than
/// writing a megabyte on a busy ext4 (finding a free inode dominated
/// snapshot writes with 128 KiB packs), and a change rewrites one pack or
/// two.
pub(crate) const PACK_BYTES: u32 = 1024 * 1024;

/// The bytes between two kept texts are the second one's key, a comma
/// and a colon: this long at most (ids are at most 128 bytes).
const SEPARATOR_MAX: usize = 160;

/// Names of packs start with a character no tenant id starts with, so a
/// pack and a sealed segment (`{tenant}.…`) never share a name.
pub(crate) const PACK_PREFIX: &str = "_kept.";

/// Whether a pack of about `pack_bytes` ends after `text`: with a
/// chance of its length in `pack_bytes`, decided by its hash.
fn ends_pack(text: &KeptPiece, pack_bytes: u32) -> bool {
    let h = text.sha256().0;
    let draw = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % pack_bytes;
    (draw as usize) < text.bytes().len()
}

/// The end (exclusive) of the pack of about `pack_bytes` that starts at
/// `pieces[start]`, a kept text.
pub(crate) fn pack_end(pieces: &[SnapshotPiece], start: usize, pack_bytes: u32) -> usize {
    let mut end = start + 1;
    loop {
        if let Some(SnapshotPiece::Kept(last)) = pieces.get(end - 1)
            && ends_pack(last, pack_bytes)
        {
            return end;
        }
        match (pieces.get(end), pieces.get(end + 1)) {
            (Some(SnapshotPiece::Bytes(between)), Some(SnapshotPiece::Kept(_)))
                if between.len() <= SEPARATOR_MAX =>
            {
                end += 2
            }
            _ => return end,
        }
    }
}

/// A pack's name: a hash of what is in it, made from the hashes its texts
/// carry and the few bytes between them, so naming a pack does not read
/// it.
pub(crate) fn pack_name(pack: &[SnapshotPiece]) -> String {
    let mut sha = Sha256::new();
    for piece in pack {
        match piece {
            SnapshotPiece::Kept(k) => {
                sha.update([b'k']);
                sha.update(k.sha256().0);
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
