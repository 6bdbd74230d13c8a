//! Commands a caller has ready for the moment its call succeeds, committed
//! in the same log entry as the call's result.
//!
//! The built-in executor reports a step as soon as the step's call has
//! succeeded, and seals the mission once the last step is reported.
//! Proposed one by one, each is a replication round and an fdatasync of
//! its own, on every node; committed as a sequence with the result, they
//! share one. Nothing changes in what they do: the engine applies each as
//! it would alone, in order, and a refusal of one leaves those after it
//! unapplied (`aura_raft::Proposal`).

use aura_engine::machine::CommandBody;
use aura_engine::mission::CallResult;
use aura_raft::SequenceApplied;

type Then = Box<dyn FnOnce(&CallResult) -> Vec<CommandBody> + Send>;

/// The commands to commit after a successful result, made from it.
pub struct FollowUp {
    then: Option<Then>,
    committed: Option<SequenceApplied>,
}

impl FollowUp {
    /// `then` makes the commands from the call's (successful) result.
    pub fn new(then: impl FnOnce(&CallResult) -> Vec<CommandBody> + Send + 'static) -> FollowUp {
        FollowUp {
            then: Some(Box::new(then)),
            committed: None,
        }
    }

    /// The commands for `result`, once: `None` when the result is a
    /// failure, or when they were taken before.
    pub(super) fn take_for(&mut self, result: &CallResult) -> Option<Vec<CommandBody>> {
        if !matches!(result, CallResult::Succeeded { .. }) {
            return None;
        }
        self.then.take().map(|then| then(result))
    }

    pub(super) fn record(&mut self, committed: SequenceApplied) {
        self.committed = Some(committed);
    }

    /// What became of the commands: `None` when they were not committed
    /// (the call failed, or its result was recorded before this request,
    /// or recording it was refused or its outcome is unknown), so they are
    /// still to do; otherwise what each applied one produced, up to the
    /// first refused.
    pub fn committed(&self) -> Option<&SequenceApplied> {
        self.committed.as_ref()
    }
}

impl std::fmt::Debug for FollowUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowUp")
            .field("taken", &self.then.is_none())
            .field("committed", &self.committed)
            .finish()
    }
}
