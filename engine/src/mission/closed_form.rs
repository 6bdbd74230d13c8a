//! A closed mission's encodings, made once.
//!
//! A closed mission never changes again, yet every snapshot wrote it out
//! anew: its JSON for the snapshot's body and its digest for the state
//! digest the snapshot carries. The state only grows, so a long-running
//! node spent more and more of each snapshot re-encoding the same closed
//! missions (over a tenth of a busy 3-node cluster's CPU). The first
//! snapshot after a mission closes keeps its JSON text and its digest, and
//! later snapshots share the one (a snapshot built in pieces holds it,
//! [`crate::machine::snapshot_pieces`]) and hash the other's 32 bytes.
//!
//! This is derived data, like the subject cache: never replicated or
//! compared, and dropped whenever the mission is handed out for change
//! ([`crate::machine::missions::Missions::get_mut`]).

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::digest::Digest;
use crate::machine::kept_text::KeptText;
use crate::mission::record::Mission;

/// The encodings of a mission as it is now; filled on first use, which is
/// only ever made of a closed mission.
#[derive(Clone, Default)]
pub(crate) struct ClosedForm(OnceLock<Encodings>);

/// A mission's JSON text ([`KeptText`]), shared with the snapshots that
/// hold it, and its digest ([`Mission::digest`]).
#[derive(Clone)]
pub(crate) struct Encodings {
    pub(crate) text: Arc<KeptText>,
    pub(crate) digest: Digest,
}

impl ClosedForm {
    pub(crate) fn of<'a>(&'a self, mission: &Mission) -> &'a Encodings {
        self.0.get_or_init(|| Encodings {
            text: KeptText::of(mission),
            digest: mission.digest(),
        })
    }

    pub(crate) fn is_kept(&self) -> bool {
        self.0.get().is_some()
    }
}

/// The cache is not part of the mission: two missions that differ only in
/// it are equal.
impl PartialEq for ClosedForm {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ClosedForm {}

impl fmt::Debug for ClosedForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_kept() {
            "ClosedForm(kept)"
        } else {
            "ClosedForm(none)"
        })
    }
}
