//! The replicated state machine: commands in, events out, with every
//! applied command recorded in its tenant's audit chain.

pub mod apply;
pub mod command;
mod directory;
pub mod event;
mod execution;
pub mod fold;
mod governance;
pub mod invariants;
pub(crate) mod kept_text;
pub mod missions;
pub mod rejection;
mod saga;
mod secrets;
mod signing_keys;
pub mod snapshot;
pub mod snapshot_pieces;
pub mod state;
mod state_digest;
mod state_digest_v2;
pub mod tokens;
mod tool_calls;

pub use command::{Advance, Closing, Command, CommandBody, Precondition, SigningSeed};
pub use event::{CarriedMission, Event, HeldStep};
pub use fold::{FoldError, replay_mission, replay_mission_latest_run};
pub use governance::check_plan;
pub use rejection::Rejection;
pub use snapshot::{RestoredState, SnapshotError};
pub use state::{
    AgentRecord, ConfigPart, CredentialRecord, EngineState, LockedKey, Namespace, TenantState,
};
