//! Sealed segments of an audit chain.
//!
//! A tenant's chain grows without bound, while the replicated state is
//! digested and snapshotted as a whole. So every [`SEGMENT_LEN`] entries
//! the chain seals its newest records into a segment: their JSON is
//! written once, at sealing, and from then on the state digest covers the
//! segment through its [`SegmentSummary`] and a snapshot copies its bytes
//! as they are. Payloads are decoded again only when someone reads them.
//!
//! The summary is enough for the digest because of the chain itself: the
//! hash of a segment's last entry commits to every entry before it, and
//! each entry commits to its payload through `payload_digest`. What a
//! snapshot carries is checked against that when it is read back
//! ([`SealedSegment::check`]).

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::audit::chain::{AuditEntry, AuditRecord};
use crate::digest::Digest;
use crate::ids::TenantId;

/// Entries per sealed segment. Part of the replicated state's shape:
/// every replica seals at the same lengths, so changing it changes the
/// state digest.
pub const SEGMENT_LEN: usize = 1024;

/// What the state digest commits to for a sealed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentSummary {
    pub first_seq: u64,
    pub len: u64,
    pub last_hash: Digest,
}

/// [`SEGMENT_LEN`] consecutive records, immutable once sealed.
#[derive(Clone, Debug)]
pub struct SealedSegment {
    /// The entries stay decoded: chain checks, proofs and lookups by
    /// sequence number read them, and they are small next to payloads.
    entries: Arc<[AuditEntry]>,
    /// The JSON array of the segment's records, written at sealing. The
    /// text stays in the allocation serde_json wrote it to (an
    /// `Arc<RawValue>` would copy a megabyte or so into one of its own).
    body: Arc<Box<RawValue>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SegmentError {
    #[error("a segment holds {found} entries, not {SEGMENT_LEN}")]
    Length { found: usize },
    #[error("audit entry {seq} is out of sequence or unlinked")]
    Unlinked { seq: u64 },
    #[error("audit entry {seq} does not match its hash")]
    EntryHash { seq: u64 },
    #[error("the payload of audit entry {seq} does not match its digest")]
    PayloadDigest { seq: u64 },
    #[error("audit entry {seq} cannot be encoded: {reason}")]
    Encoding { seq: u64, reason: String },
}

impl SealedSegment {
    /// Seals records that the chain has already linked and hashed.
    pub(crate) fn seal(records: Vec<AuditRecord>) -> SealedSegment {
        assert_eq!(records.len(), SEGMENT_LEN, "segments are sealed full");
        let body = serde_json::value::to_raw_value(&records).expect("audit records serialize");
        SealedSegment {
            entries: records.into_iter().map(|r| r.entry).collect(),
            body: Arc::new(body),
        }
    }

    /// Checks a segment read back from a snapshot against the chain
    /// around it: linkage from `prev_hash`, every entry hash, every
    /// payload digest.
    pub(crate) fn check(
        &self,
        tenant: &TenantId,
        first_seq: u64,
        prev_hash: Digest,
    ) -> Result<(), SegmentError> {
        if self.entries.len() != SEGMENT_LEN {
            return Err(SegmentError::Length {
                found: self.entries.len(),
            });
        }
        let mut prev = prev_hash;
        let mut buf = Vec::with_capacity(256);
        for (i, r) in self.records().iter().enumerate() {
            let e = &r.entry;
            let seq = first_seq + i as u64;
            e.check_in_chain(tenant, seq, &prev, &mut buf)?;
            let digest = r.payload.digest().map_err(|err| SegmentError::Encoding {
                seq,
                reason: err.to_string(),
            })?;
            if digest != e.payload_digest {
                return Err(SegmentError::PayloadDigest { seq });
            }
            prev = e.entry_hash;
        }
        Ok(())
    }

    pub fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            first_seq: self.entries[0].seq,
            len: self.entries.len() as u64,
            last_hash: self.entries[self.entries.len() - 1].entry_hash,
        }
    }

    pub fn entries(&self) -> &[AuditEntry] {
        &self.entries
    }

    /// The JSON array of the segment's records, as snapshots carry it.
    pub fn body(&self) -> &Arc<Box<RawValue>> {
        &self.body
    }

    /// The segment's records, decoded from its body.
    pub fn records(&self) -> Vec<AuditRecord> {
        // The body was written by `seal` from records of this type.
        serde_json::from_str(self.body.get()).expect("a sealed segment decodes")
    }
}

impl PartialEq for SealedSegment {
    fn eq(&self, other: &Self) -> bool {
        // Two sealed segments are equal when their entries are: each entry
        // commits to its payload.
        self.entries == other.entries
    }
}

impl Eq for SealedSegment {}

/// Snapshots (JSON) carry the records; the canonical encoding behind the
/// state digest carries the summary only.
impl Serialize for SealedSegment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.body.serialize(s)
        } else {
            self.summary().serialize(s)
        }
    }
}

/// Reads a segment as a snapshot holds it, keeping its bytes. Nothing is
/// checked here (the tenant is not known yet): restoring a snapshot runs
/// [`SealedSegment::check`] on every segment.
impl<'de> Deserialize<'de> for SealedSegment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return Err(D::Error::custom(
                "sealed segments are read from JSON snapshots only",
            ));
        }
        /// A record with its payload skipped: `check` decodes payloads
        /// once, when it verifies them.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct EntryOf {
            entry: AuditEntry,
            #[serde(rename = "payload")]
            _payload: serde::de::IgnoredAny,
        }
        let body = Box::<RawValue>::deserialize(d)?;
        let records: Vec<EntryOf> = serde_json::from_str(body.get()).map_err(D::Error::custom)?;
        Ok(SealedSegment {
            entries: records.into_iter().map(|r| r.entry).collect(),
            body: Arc::new(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actor::Actor;
    use crate::audit::AuditLog;
    use crate::canonical::{self, Domain};
    use crate::time::Timestamp;

    const LOG_DOMAIN: Domain = Domain::new("aura.test-audit-log/1");

    fn tenant() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    fn log_of(n: usize) -> AuditLog {
        let mut log = AuditLog::default();
        for i in 0..n {
            let r = log
                .prepare(
                    &tenant(),
                    Timestamp(i as i64),
                    Actor::Runtime,
                    "test.entry",
                    None,
                    &json!([{ "n": i, "text": "x".repeat(i % 7) }]),
                )
                .unwrap();
            log.append(r);
        }
        log
    }

    fn restored(json: &[u8]) -> Result<AuditLog, SegmentError> {
        let mut log: AuditLog = serde_json::from_slice(json).unwrap();
        log.check_and_rebuild(&tenant())?;
        Ok(log)
    }

    #[test]
    fn reads_cross_segment_boundaries() {
        let n = 2 * SEGMENT_LEN + 300;
        let log = log_of(n);
        assert_eq!(log.len(), n as u64);
        let all = log.to_records();
        assert_eq!(all.len(), n);
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.entry.seq, i as u64);
            assert_eq!(r.payload.to_value()[0]["n"], i);
            assert_eq!(log.entry(i as u64), Some(&r.entry));
        }
        assert_eq!(log.entry(n as u64), None);
        let edge = SEGMENT_LEN as u64;
        let slice = log.records_in(edge - 10, 2 * edge + 10);
        assert_eq!(
            slice.as_slice(),
            &all[SEGMENT_LEN - 10..2 * SEGMENT_LEN + 10]
        );
        assert_eq!(log.records_in(n as u64 - 5, n as u64 + 50).len(), 5);
        assert!(log.records_in(n as u64 + 1, n as u64 + 9).is_empty());
        assert_eq!(log.head_hash(), all[n - 1].entry.entry_hash);
        assert_eq!(log.tree().len(), n as u64);
    }

    #[test]
    fn head_of_a_chain_that_just_sealed_is_its_last_entry() {
        let log = log_of(SEGMENT_LEN);
        let last = log.entry(SEGMENT_LEN as u64 - 1).unwrap().entry_hash;
        assert_eq!(log.head_hash(), last);
        let mut next = log.clone();
        let r = next
            .prepare(
                &tenant(),
                Timestamp(0),
                Actor::Runtime,
                "k",
                None,
                &json!([]),
            )
            .unwrap();
        assert_eq!(r.entry.prev_hash, last);
        next.append(r);
        assert_eq!(next.len(), SEGMENT_LEN as u64 + 1);
    }

    #[test]
    fn a_snapshot_round_trip_keeps_chain_tree_and_digest() {
        let log = log_of(SEGMENT_LEN + 17);
        let json = serde_json::to_vec(&log).unwrap();
        let back = restored(&json).unwrap();
        assert_eq!(back, log);
        assert_eq!(back.tree().root(), log.tree().root());
        assert_eq!(back.to_records(), log.to_records());
        assert_eq!(
            canonical::digest(LOG_DOMAIN, &back).unwrap(),
            canonical::digest(LOG_DOMAIN, &log).unwrap()
        );
    }

    #[test]
    fn the_digest_covers_a_sealed_segment_by_its_summary() {
        let log = log_of(SEGMENT_LEN + 1);
        let summary_only = log_of(SEGMENT_LEN);
        let encoded = canonical::message(LOG_DOMAIN, &summary_only).unwrap();
        // The sealed segment is encoded as its three summary fields, not
        // as its 1,024 records.
        assert!(encoded.len() < 200, "{} bytes", encoded.len());
        assert_ne!(
            canonical::digest(LOG_DOMAIN, &log).unwrap(),
            canonical::digest(LOG_DOMAIN, &summary_only).unwrap()
        );
    }

    fn tampered(edit: impl FnOnce(&mut serde_json::Value)) -> Result<AuditLog, SegmentError> {
        let log = log_of(SEGMENT_LEN + 3);
        let mut v = serde_json::to_value(&log).unwrap();
        edit(&mut v);
        restored(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn a_snapshot_with_an_altered_sealed_record_is_refused() {
        assert_eq!(
            tampered(|v| v["sealed"][0][5]["payload"][0]["n"] = json!(999)).unwrap_err(),
            SegmentError::PayloadDigest { seq: 5 }
        );
        assert_eq!(
            tampered(|v| v["sealed"][0][9]["entry"]["kind"] = json!("other")).unwrap_err(),
            SegmentError::EntryHash { seq: 9 }
        );
        assert_eq!(
            tampered(|v| {
                let records = v["sealed"][0].as_array_mut().unwrap();
                records.swap(3, 4);
            })
            .unwrap_err(),
            SegmentError::Unlinked { seq: 3 }
        );
        assert_eq!(
            tampered(|v| {
                v["sealed"][0].as_array_mut().unwrap().pop();
            })
            .unwrap_err(),
            SegmentError::Length {
                found: SEGMENT_LEN - 1
            }
        );
        assert_eq!(
            tampered(|v| {
                v["open"].as_array_mut().unwrap().remove(0);
            })
            .unwrap_err(),
            SegmentError::Unlinked {
                seq: SEGMENT_LEN as u64
            }
        );
    }
}
