//! AURA's deterministic governance core.
//!
//! * [`canonical`]: the one byte encoding for everything signed or hashed.
//! * [`identity`]: tenant keys, AgentIdentity credentials, ExecutionTokens
//!   and the DualToken check.
//! * [`audit`]: per-tenant hash chain, Merkle tree, signed checkpoints,
//!   export and verification.
//! * [`directory`]: each tenant's users, groups and API keys.
//! * [`mission`]: the Mission Layer and its 8-state machine.
//! * [`machine`]: the replicated state machine that ties them together.
//!
//! Nothing in this crate reads a clock, draws randomness or does IO inside
//! [`machine::EngineState::apply`]; the proposer stamps time, ids and key
//! material into each command.

pub mod actor;
pub mod audit;
pub mod canonical;
pub mod digest;
pub mod directory;
pub mod identity;
pub mod ids;
pub mod machine;
pub mod mission;
#[cfg(feature = "openapi")]
mod openapi;
pub mod policy;
pub mod secret;
pub mod sim;
pub mod time;
pub mod tool;

pub use actor::Actor;
pub use digest::Digest;
pub use time::{Millis, Timestamp};
