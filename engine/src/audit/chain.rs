//! The per-tenant audit chain: every entry names the hash of the one before
//! it, and every entry is also a leaf of the tenant's Merkle tree.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::Actor;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::merkle::{self, MerkleTree};
use crate::canonical::{self, CanonicalError, Domain};
use crate::digest::Digest;
use crate::ids::{MissionId, TenantId};
use crate::time::Timestamp;

pub const ENTRY_DOMAIN: Domain = Domain::new("aura.audit-entry/1");
pub const PAYLOAD_DOMAIN: Domain = Domain::new("aura.audit-payload/1");

/// One audit entry. `entry_hash` covers every other field plus the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub seq: u64,
    pub prev_hash: Digest,
    pub time: Timestamp,
    pub actor: Actor,
    pub kind: String,
    pub mission: Option<MissionId>,
    pub payload_digest: Digest,
    pub entry_hash: Digest,
}

#[derive(Serialize)]
struct EntryHashInput<'a> {
    tenant: &'a TenantId,
    seq: u64,
    prev_hash: &'a Digest,
    time: Timestamp,
    actor: &'a Actor,
    kind: &'a str,
    mission: &'a Option<MissionId>,
    payload_digest: &'a Digest,
}

impl AuditEntry {
    /// The hash this entry should carry, recomputed from its content.
    pub fn compute_hash(&self, tenant: &TenantId) -> Result<Digest, CanonicalError> {
        canonical::digest(
            ENTRY_DOMAIN,
            &EntryHashInput {
                tenant,
                seq: self.seq,
                prev_hash: &self.prev_hash,
                time: self.time,
                actor: &self.actor,
                kind: &self.kind,
                mission: &self.mission,
                payload_digest: &self.payload_digest,
            },
        )
    }

    /// The Merkle leaf for this entry.
    pub fn leaf_hash(&self) -> Digest {
        merkle::leaf_hash(self.entry_hash.as_bytes())
    }
}

/// Digest of an entry's payload (the JSON form of the events it records),
/// over its canonical encoding, so that any JSON spelling of the same
/// payload has the same digest.
pub fn payload_digest(payload: &Value) -> Result<Digest, CanonicalError> {
    canonical::digest(PAYLOAD_DOMAIN, payload)
}

/// An entry with the payload it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub entry: AuditEntry,
    pub payload: Value,
}

/// A tenant's audit chain, its Merkle tree (derived, rebuilt on restore)
/// and its signed checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    records: Vec<AuditRecord>,
    checkpoints: Vec<Checkpoint>,
    #[serde(skip)]
    tree: MerkleTree,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog {
            records: Vec::new(),
            checkpoints: Vec::new(),
            tree: MerkleTree::new(),
        }
    }
}

impl AuditLog {
    pub fn len(&self) -> u64 {
        self.records.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Hash of the newest entry, or zero for an empty chain.
    pub fn head_hash(&self) -> Digest {
        self.records
            .last()
            .map_or(Digest::ZERO, |r| r.entry.entry_hash)
    }

    /// Builds the next entry without appending it, so a caller can finish
    /// every fallible step before the chain changes.
    pub fn prepare(
        &self,
        tenant: &TenantId,
        time: Timestamp,
        actor: Actor,
        kind: &str,
        mission: Option<MissionId>,
        payload: Value,
    ) -> Result<AuditRecord, CanonicalError> {
        let mut entry = AuditEntry {
            seq: self.len(),
            prev_hash: self.head_hash(),
            time,
            actor,
            kind: kind.to_owned(),
            mission,
            payload_digest: payload_digest(&payload)?,
            entry_hash: Digest::ZERO,
        };
        entry.entry_hash = entry.compute_hash(tenant)?;
        Ok(AuditRecord { entry, payload })
    }

    /// Appends a record made by [`AuditLog::prepare`] on this log.
    pub fn append(&mut self, record: AuditRecord) {
        assert_eq!(
            record.entry.seq,
            self.len(),
            "audit records append in order"
        );
        assert_eq!(
            record.entry.prev_hash,
            self.head_hash(),
            "audit records link"
        );
        self.tree.push_leaf_hash(record.entry.leaf_hash());
        self.records.push(record);
    }

    pub fn add_checkpoint(&mut self, checkpoint: Checkpoint) {
        assert!(
            checkpoint.size <= self.len(),
            "checkpoint covers existing entries"
        );
        self.checkpoints.push(checkpoint);
    }

    /// Rebuilds the derived Merkle tree after deserialization.
    pub fn rebuild_tree(&mut self) {
        let mut tree = MerkleTree::new();
        for r in &self.records {
            tree.push_leaf_hash(r.entry.leaf_hash());
        }
        self.tree = tree;
    }
}
