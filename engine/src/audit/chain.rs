//! The per-tenant audit chain: every entry names the hash of the one before
//! it, and every entry is also a leaf of the tenant's Merkle tree.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::merkle::{self, MerkleTree};
use crate::audit::payload::Payload;
use crate::audit::segment::{SEGMENT_LEN, SealedSegment, SegmentError};
use crate::canonical::{self, CanonicalError, DirectHasher, Domain};
use crate::digest::Digest;
use crate::ids::{MissionId, TenantId};
use crate::time::Timestamp;

pub const ENTRY_DOMAIN: Domain = Domain::new("aura.audit-entry/1");
pub const PAYLOAD_DOMAIN: Domain = Domain::new("aura.audit-payload/1");

/// One audit entry. `entry_hash` covers every other field plus the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    fn hash_input<'a>(&'a self, tenant: &'a TenantId) -> EntryHashInput<'a> {
        EntryHashInput {
            tenant,
            seq: self.seq,
            prev_hash: &self.prev_hash,
            time: self.time,
            actor: &self.actor,
            kind: &self.kind,
            mission: &self.mission,
            payload_digest: &self.payload_digest,
        }
    }

    /// The hash this entry should carry, recomputed from its content.
    ///
    /// Verification is dominated by this function, so it writes the
    /// AURA-CE/1 encoding of [`EntryHashInput`] straight into the hasher
    /// instead of going through serde; `direct_hash_matches_the_spec`
    /// holds the two to the same bytes.
    pub fn compute_hash(&self, tenant: &TenantId) -> Result<Digest, CanonicalError> {
        self.compute_hash_with(tenant, &mut Vec::with_capacity(256))
    }

    /// [`AuditEntry::compute_hash`] reusing `buf`, for loops over a chain.
    pub fn compute_hash_with(
        &self,
        tenant: &TenantId,
        buf: &mut Vec<u8>,
    ) -> Result<Digest, CanonicalError> {
        let mut h = DirectHasher::new(ENTRY_DOMAIN, buf);
        h.bytes(tenant.as_str().as_bytes())?;
        h.u64(self.seq);
        h.bytes(self.prev_hash.as_bytes())?;
        h.i64(self.time.0);
        // Actor: variant index, then the id for the variants that carry one.
        match &self.actor {
            Actor::Platform => h.u32(0),
            Actor::User(u) => {
                h.u32(1);
                h.bytes(u.as_str().as_bytes())?;
            }
            Actor::Agent(a) => {
                h.u32(2);
                h.bytes(a.as_str().as_bytes())?;
            }
            Actor::Runtime => h.u32(3),
        }
        h.bytes(self.kind.as_bytes())?;
        match &self.mission {
            None => h.u8(0),
            Some(m) => {
                h.u8(1);
                h.bytes(m.as_str().as_bytes())?;
            }
        }
        h.bytes(self.payload_digest.as_bytes())?;
        Ok(h.finish())
    }

    /// The same hash through the generic canonical encoder: the definition
    /// that [`AuditEntry::compute_hash`] must match.
    pub fn compute_hash_generic(&self, tenant: &TenantId) -> Result<Digest, CanonicalError> {
        canonical::digest(ENTRY_DOMAIN, &self.hash_input(tenant))
    }

    /// Checks that this entry is entry `seq` of `tenant`'s chain, after
    /// the entry whose hash is `prev`, and that it matches its own hash.
    pub fn check_in_chain(
        &self,
        tenant: &TenantId,
        seq: u64,
        prev: &Digest,
        buf: &mut Vec<u8>,
    ) -> Result<(), SegmentError> {
        if self.seq != seq || self.prev_hash != *prev {
            return Err(SegmentError::Unlinked { seq });
        }
        let hash = self
            .compute_hash_with(tenant, buf)
            .map_err(|err| SegmentError::Encoding {
                seq,
                reason: err.to_string(),
            })?;
        if hash != self.entry_hash {
            return Err(SegmentError::EntryHash { seq });
        }
        Ok(())
    }

    /// The Merkle leaf for this entry.
    pub fn leaf_hash(&self) -> Digest {
        merkle::leaf_hash(self.entry_hash.as_bytes())
    }
}

/// The framed bytes an entry's hash is taken over (for third-party
/// verifiers and benchmarks).
pub fn entry_message(tenant: &TenantId, entry: &AuditEntry) -> Result<Vec<u8>, CanonicalError> {
    canonical::message(ENTRY_DOMAIN, &entry.hash_input(tenant))
}

/// An entry with the payload it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub entry: AuditEntry,
    pub payload: Payload,
}

/// A tenant's audit chain, its Merkle tree (derived, rebuilt on restore)
/// and its signed checkpoints. Older records live in sealed segments
/// ([`crate::audit::segment`]); the newest, fewer than [`SEGMENT_LEN`],
/// stay open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    sealed: Vec<SealedSegment>,
    open: Vec<AuditRecord>,
    checkpoints: Vec<Checkpoint>,
    #[serde(skip)]
    tree: MerkleTree,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog {
            sealed: Vec::new(),
            open: Vec::new(),
            checkpoints: Vec::new(),
            tree: MerkleTree::new(),
        }
    }
}

impl AuditLog {
    /// The sealed segments, oldest first.
    pub fn sealed(&self) -> &[SealedSegment] {
        &self.sealed
    }

    pub fn len(&self) -> u64 {
        (self.sealed.len() * SEGMENT_LEN + self.open.len()) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, oldest first, without payloads.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &AuditEntry> {
        self.sealed
            .iter()
            .flat_map(|s| s.entries())
            .chain(self.open.iter().map(|r| &r.entry))
    }

    /// The entry with sequence number `seq`.
    pub fn entry(&self, seq: u64) -> Option<&AuditEntry> {
        let seq = usize::try_from(seq).ok()?;
        match self.sealed.get(seq / SEGMENT_LEN) {
            Some(segment) => segment.entries().get(seq % SEGMENT_LEN),
            None => self
                .open
                .get(seq - self.sealed.len() * SEGMENT_LEN)
                .map(|r| &r.entry),
        }
    }

    /// Records `from..to` (clamped to the chain), decoding only the sealed
    /// segments they fall in.
    pub fn records_in(&self, from: u64, to: u64) -> Vec<AuditRecord> {
        let len = self.len();
        let (from, to) = (from.min(len), to.min(len));
        let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
        let mut seq = from;
        while seq < to {
            let at = usize::try_from(seq).expect("a chain in memory is indexable");
            let take = usize::try_from(to - seq).expect("a chain in memory is indexable");
            match self.sealed.get(at / SEGMENT_LEN) {
                Some(segment) => {
                    let skip = at % SEGMENT_LEN;
                    let records = segment.records();
                    let n = take.min(SEGMENT_LEN - skip);
                    out.extend(records.into_iter().skip(skip).take(n));
                    seq += n as u64;
                }
                None => {
                    let skip = at - self.sealed.len() * SEGMENT_LEN;
                    out.extend(self.open[skip..skip + take].iter().cloned());
                    seq = to;
                }
            }
        }
        out
    }

    /// Every record, decoded.
    pub fn to_records(&self) -> Vec<AuditRecord> {
        self.records_in(0, self.len())
    }

    /// Every record, oldest first, decoding one sealed segment at a time.
    pub fn records(&self) -> impl Iterator<Item = Cow<'_, AuditRecord>> {
        self.sealed
            .iter()
            .flat_map(|s| s.records().into_iter().map(Cow::Owned))
            .chain(self.open.iter().map(Cow::Borrowed))
    }

    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Hash of the newest entry, or zero for an empty chain.
    pub fn head_hash(&self) -> Digest {
        match (self.open.last(), self.sealed.last()) {
            (Some(r), _) => r.entry.entry_hash,
            (None, Some(s)) => s.summary().last_hash,
            (None, None) => Digest::ZERO,
        }
    }

    /// Builds the next entry, recording `payload` (its JSON form), without
    /// appending it, so a caller can finish every fallible step before the
    /// chain changes.
    pub fn prepare<T: Serialize + ?Sized>(
        &self,
        tenant: &TenantId,
        time: Timestamp,
        actor: Actor,
        kind: &str,
        mission: Option<MissionId>,
        payload: &T,
    ) -> Result<AuditRecord, CanonicalError> {
        let (payload, payload_digest) = Payload::encode(payload)?;
        let mut entry = AuditEntry {
            seq: self.len(),
            prev_hash: self.head_hash(),
            time,
            actor,
            kind: kind.to_owned(),
            mission,
            payload_digest,
            entry_hash: Digest::ZERO,
        };
        entry.entry_hash = entry.compute_hash(tenant)?;
        Ok(AuditRecord { entry, payload })
    }

    /// Appends a record made by [`AuditLog::prepare`] on this log, sealing
    /// the open records when they fill a segment.
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
        self.open.push(record);
        if self.open.len() == SEGMENT_LEN {
            let full = std::mem::take(&mut self.open);
            self.sealed.push(SealedSegment::seal(full));
        }
    }

    pub fn add_checkpoint(&mut self, checkpoint: Checkpoint) {
        assert!(
            checkpoint.size <= self.len(),
            "checkpoint covers existing entries"
        );
        self.checkpoints.push(checkpoint);
    }

    /// After deserialization: checks the sealed segments against the chain
    /// (their bodies are not covered by the state digest, only their
    /// summaries) and rebuilds the derived Merkle tree.
    pub fn check_and_rebuild(&mut self, tenant: &TenantId) -> Result<(), SegmentError> {
        let mut prev = Digest::ZERO;
        for (i, segment) in self.sealed.iter().enumerate() {
            segment.check(tenant, (i * SEGMENT_LEN) as u64, prev)?;
            prev = segment.summary().last_hash;
        }
        if self.open.len() >= SEGMENT_LEN {
            return Err(SegmentError::Length {
                found: self.open.len(),
            });
        }
        let mut buf = Vec::with_capacity(256);
        for (i, r) in self.open.iter().enumerate() {
            let seq = (self.sealed.len() * SEGMENT_LEN + i) as u64;
            r.entry.check_in_chain(tenant, seq, &prev, &mut buf)?;
            prev = r.entry.entry_hash;
        }
        let mut tree = MerkleTree::new();
        for e in self.entries() {
            tree.push_leaf_hash(e.leaf_hash());
        }
        self.tree = tree;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgentId, UserId};

    #[test]
    fn direct_hash_matches_the_spec() {
        let tenant = TenantId::new("acme").unwrap();
        let actors = [
            Actor::Platform,
            Actor::Runtime,
            Actor::User(UserId::new("alice").unwrap()),
            Actor::Agent(AgentId::new("bot-1").unwrap()),
        ];
        for (i, actor) in actors.into_iter().enumerate() {
            for mission in [None, Some(MissionId::new("m-9").unwrap())] {
                let e = AuditEntry {
                    seq: 1000 + i as u64,
                    prev_hash: Digest::of(b"prev"),
                    time: Timestamp(-5 + i as i64),
                    actor: actor.clone(),
                    kind: "mission.advance".into(),
                    mission,
                    payload_digest: Digest::of(b"payload"),
                    entry_hash: Digest::ZERO,
                };
                assert_eq!(
                    e.compute_hash(&tenant).unwrap(),
                    e.compute_hash_generic(&tenant).unwrap()
                );
            }
        }
    }
}
