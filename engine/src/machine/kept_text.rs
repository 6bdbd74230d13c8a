//! The JSON text of a value that no longer changes, made once and shared.
//!
//! A closed mission and an issued execution token never change again, yet
//! a snapshot wrote each of them out anew every time. Their text is kept
//! instead: a snapshot copies nothing of it (it is a shared piece,
//! [`crate::machine::snapshot_pieces`]), and a store that names files by
//! what is in them reads the text's hash rather than hashing it again.
//!
//! This is derived data: never replicated or compared.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::digest::Digest;

/// A value's JSON text, exactly as `serde_json` writes the value in a
/// snapshot, and the SHA-256 of that text.
///
/// The text's hash is not a digest of the value: a mission's digest is of
/// its canonical encoding, and two missions equal in it (a JSON object's
/// keys in another order) may have different texts.
pub(crate) struct KeptText {
    pub(crate) json: Box<RawValue>,
    pub(crate) sha256: Digest,
}

impl KeptText {
    pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> Arc<KeptText> {
        let json = serde_json::value::to_raw_value(value).expect("state serializes");
        Arc::new(KeptText {
            sha256: Digest::of(json.get().as_bytes()),
            json,
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.json.get().as_bytes()
    }
}
