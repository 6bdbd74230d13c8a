//! AuditChain: per-tenant hash chain, Merkle tree, signed checkpoints,
//! export and verification.

pub mod chain;
pub mod checkpoint;
pub mod export;
mod key_chain;
pub mod merkle;
pub mod payload;
pub mod segment;

pub use chain::{AuditEntry, AuditLog, AuditRecord};
pub use checkpoint::Checkpoint;
pub use export::{
    VerifyError, VerifyOptions, VerifyReport, verify_export, verify_export_visiting, write_export,
    write_signed_export,
};
pub use payload::Payload;
pub use segment::{SEGMENT_LEN, SegmentError};
