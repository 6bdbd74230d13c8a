//! The runtime around the engine: what makes missions move without a
//! person or an agent asking. It changes engine state only by proposing
//! commands, stamped with this node's clock, like every other proposer.
//!
//! - [`timers`]: lease expiry, mission timeouts and approval deadlines.
//! - [`queue`]: which queued mission a worker's claim takes next.
//! - [`executor`]: the built-in worker, with [`reasoner`]s to plan.
//! - [`compensator`]: undoes a failed mission's completed steps.

pub mod compensator;
pub mod executor;
mod inflight;
pub mod queue;
pub mod reasoner;
pub mod timers;
