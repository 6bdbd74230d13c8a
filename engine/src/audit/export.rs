//! The audit export format and its verifier.
//!
//! An export is JSON Lines, so that a verifier can stream exports far
//! larger than memory:
//!
//! 1. a header: `{"format":"aura.audit-export/1","tenant":…,"origin":…,
//!    "key_name":…,"public_key":…,"entries":N}` for a tenant that has
//!    signed with one key; format `aura.audit-export/2` lists every key it
//!    signed with, oldest first, as `"keys":[…]` in place of `public_key`;
//! 2. one line per entry, in order: `{"entry":{…},"payload":{…}}`;
//! 3. after the entry that brings the tree to a checkpoint's size, that
//!    checkpoint: `{"checkpoint":"<signed note>","consistency":[…]}`, where
//!    `consistency` proves the previous checkpoint in the export is a prefix
//!    of this one (empty for the first).
//!
//! The chain records each rotation of the tenant's key (an entry naming
//! the new key), and the outgoing key signs the checkpoint over that
//! entry. The verifier starts with the first key, checks each checkpoint
//! against the key in force, and moves to the next key only once a
//! checkpoint by the key in force covers the rotation entry.
//!
//! The keys inside an export prove nothing by themselves (whoever forged
//! the export could replace them): verifiers should pin one of the
//! tenant's keys with `--key`, obtained out of band. A pinned key must
//! be the first or sign a checkpoint in the export, since a later key
//! vouches for the history before it only through its own signature.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::audit::chain::{AuditEntry, AuditLog, AuditRecord};
use crate::audit::checkpoint::{self, Checkpoint, CheckpointError};
use crate::audit::key_chain::KeyChain;
use crate::audit::merkle::{CompactRange, ProofError, verify_consistency};
use crate::audit::payload::Payload;
use crate::digest::Digest;
use crate::identity::keys::PublicKey;
use crate::ids::TenantId;

/// The format of an export whose tenant signed with one key.
pub const EXPORT_FORMAT: &str = "aura.audit-export/1";
/// The format of an export whose tenant's key rotated.
pub const EXPORT_FORMAT_ROTATED: &str = "aura.audit-export/2";

/// An export's first line, either format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportHeader {
    pub tenant: TenantId,
    pub origin: String,
    pub key_name: String,
    /// Every key the tenant signed with, oldest first; never empty.
    pub keys: Vec<PublicKey>,
    pub entries: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireHeader {
    format: String,
    tenant: TenantId,
    origin: String,
    key_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<PublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<PublicKey>>,
    entries: u64,
}

impl ExportHeader {
    fn to_wire(&self) -> WireHeader {
        let (format, public_key, keys) = match self.keys.as_slice() {
            [only] => (EXPORT_FORMAT, Some(*only), None),
            all => (EXPORT_FORMAT_ROTATED, None, Some(all.to_vec())),
        };
        WireHeader {
            format: format.to_owned(),
            tenant: self.tenant.clone(),
            origin: self.origin.clone(),
            key_name: self.key_name.clone(),
            public_key,
            keys,
            entries: self.entries,
        }
    }

    fn from_wire(w: WireHeader) -> Result<ExportHeader, String> {
        let keys = match (w.format.as_str(), w.public_key, w.keys) {
            (EXPORT_FORMAT, Some(key), None) => vec![key],
            (EXPORT_FORMAT_ROTATED, None, Some(keys)) if !keys.is_empty() => keys,
            (EXPORT_FORMAT, ..) => return Err(format!("{EXPORT_FORMAT} names one `public_key`")),
            (EXPORT_FORMAT_ROTATED, ..) => {
                return Err(format!("{EXPORT_FORMAT_ROTATED} lists one or more `keys`"));
            }
            (other, ..) => return Err(format!("format `{other}`")),
        };
        Ok(ExportHeader {
            tenant: w.tenant,
            origin: w.origin,
            key_name: w.key_name,
            keys,
            entries: w.entries,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: String,
    consistency: Vec<Digest>,
}

enum BodyLine {
    Entry(Box<AuditRecord>),
    Checkpoint(CheckpointLine),
}

/// Any body line, read once: its keys say which kind it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnyLine {
    entry: Option<AuditEntry>,
    payload: Option<Payload>,
    checkpoint: Option<String>,
    consistency: Option<Vec<Digest>>,
}

/// Dispatches on the line's keys so errors speak of the right shape.
fn parse_body(line: &[u8]) -> Result<BodyLine, String> {
    let any: AnyLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    match any {
        AnyLine {
            entry: None,
            payload: None,
            checkpoint: Some(checkpoint),
            consistency,
        } => Ok(BodyLine::Checkpoint(CheckpointLine {
            checkpoint,
            consistency: consistency.ok_or("bad checkpoint line: missing field `consistency`")?,
        })),
        AnyLine {
            checkpoint: Some(_),
            ..
        } => Err("bad checkpoint line: it also has entry fields".into()),
        AnyLine {
            entry: Some(entry),
            payload: Some(payload),
            consistency: None,
            ..
        } => Ok(BodyLine::Entry(Box::new(AuditRecord { entry, payload }))),
        AnyLine {
            consistency: Some(_),
            ..
        } => Err("bad entry line: it also has checkpoint fields".into()),
        AnyLine { entry: None, .. } => Err("bad entry line: missing field `entry`".into()),
        AnyLine { .. } => Err("bad entry line: missing field `payload`".into()),
    }
}

/// Writes a tenant's whole audit log as an export.
/// `keys` are every key the tenant signed with, oldest first.
pub fn write_export(
    out: &mut dyn Write,
    tenant: &TenantId,
    keys: &[PublicKey],
    log: &AuditLog,
) -> std::io::Result<()> {
    write_first(out, tenant, keys, log, log.len())
}

/// Writes the tenant's audit log up to its last signed checkpoint, so
/// that the export ends with a signature over all of it; `None` when no
/// checkpoint was signed yet.
pub fn write_signed_export(
    out: &mut dyn Write,
    tenant: &TenantId,
    keys: &[PublicKey],
    log: &AuditLog,
) -> Option<std::io::Result<()>> {
    let signed = log.checkpoints().last()?.size;
    Some(write_first(out, tenant, keys, log, signed))
}

/// Writes the first `entries` entries of the log and the checkpoints
/// among them.
fn write_first(
    out: &mut dyn Write,
    tenant: &TenantId,
    keys: &[PublicKey],
    log: &AuditLog,
    entries: u64,
) -> std::io::Result<()> {
    assert!(!keys.is_empty(), "a tenant has at least one key");
    let header = ExportHeader {
        tenant: tenant.clone(),
        origin: checkpoint::origin(tenant),
        key_name: checkpoint::key_name(tenant),
        keys: keys.to_vec(),
        entries,
    };
    serde_json::to_writer(&mut *out, &header.to_wire())?;
    out.write_all(b"\n")?;
    let mut checkpoints = log.checkpoints().iter().peekable();
    let mut previous: Option<u64> = None;
    let mut write_due = |out: &mut dyn Write, size: u64| -> std::io::Result<()> {
        while let Some(cp) = checkpoints.next_if(|cp| cp.size == size) {
            let consistency = match previous {
                Some(old) if old > 0 => log
                    .tree()
                    .consistency_proof(old, cp.size)
                    .map_err(std::io::Error::other)?,
                _ => Vec::new(),
            };
            previous = Some(cp.size);
            serde_json::to_writer(
                &mut *out,
                &CheckpointLine {
                    checkpoint: cp.to_note(),
                    consistency,
                },
            )?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    write_due(out, 0)?;
    let entries = usize::try_from(entries).unwrap_or(usize::MAX);
    for (i, record) in log.records().take(entries).enumerate() {
        serde_json::to_writer(&mut *out, &*record)?;
        out.write_all(b"\n")?;
        write_due(out, i as u64 + 1)?;
    }
    Ok(())
}

/// What is wrong with an export. Entry problems name the entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Failure {
    #[error("cannot read the export: {0}")]
    Io(String),
    #[error("the export is empty")]
    Empty,
    #[error("header is not an {EXPORT_FORMAT} header: {0}")]
    BadHeader(String),
    #[error("the export is signed by keys {found}, not the trusted key {trusted}")]
    UntrustedKey { trusted: String, found: String },
    #[error(
        "the trusted key {trusted} signs no checkpoint in the export, so it vouches for none of it"
    )]
    TrustedKeyNeverSigned { trusted: String },
    #[error("checkpoint is signed by key {found}, but key {in_force} is in force at this point")]
    KeyNotInForce { in_force: String, found: String },
    #[error("the chain's record of the tenant's keys does not match the header: {0}")]
    KeyHistory(String),
    #[error("line is neither an entry nor a checkpoint: {0}")]
    Malformed(String),
    #[error(
        "expected entry {expected} but found entry {found} (entries deleted, reordered or duplicated)"
    )]
    OutOfSequence { expected: u64, found: u64 },
    #[error("its payload does not match its payload digest")]
    PayloadMismatch,
    #[error("its content does not match its entry hash")]
    EntryHashMismatch,
    #[error("it does not link to the entry before it")]
    BrokenLink,
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint is for `{found}`, not `{expected}`")]
    WrongOrigin { expected: String, found: String },
    #[error("checkpoint covers {claimed} entries, but it stands after entry {seen}")]
    CheckpointMisplaced { claimed: u64, seen: u64 },
    #[error("checkpoint root does not match the entries (tree of {size} entries)")]
    CheckpointRootMismatch { size: u64 },
    #[error("consistency proof from the previous checkpoint fails: {0}")]
    Inconsistent(ProofError),
    #[error("the header announces {announced} entries but the export holds {found} (truncated?)")]
    Truncated { announced: u64, found: u64 },
    #[error("entries {from}..{to} are not covered by any signed checkpoint")]
    UnsignedTail { from: u64, to: u64 },
    #[error("the trusted checkpoint is not usable: {0}")]
    BadTrustedCheckpoint(String),
    #[error(
        "the export holds {found} entries but the trusted checkpoint covers {trusted}: entries were removed since it was signed"
    )]
    ShorterThanTrusted { trusted: u64, found: u64 },
    #[error(
        "the export's first {size} entries are not those the trusted checkpoint signed (history was rewritten)"
    )]
    DivergesFromTrusted { size: u64 },
}

/// A failure and where it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}line {line}: {failure}", .seq.map(|s| format!("entry {s}, ")).unwrap_or_default())]
pub struct VerifyError {
    /// 1-based line number in the export.
    pub line: u64,
    /// The first bad entry, when the failure is about one.
    pub seq: Option<u64>,
    pub failure: Failure,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The tenant key to trust; without it, the key in the header is used.
    pub trusted_key: Option<PublicKey>,
    /// Accept entries after the last checkpoint.
    pub allow_unsigned_tail: bool,
    /// A checkpoint of this tenant seen earlier: the export must extend
    /// it (hold at least its entries, with its root at its size). Without
    /// one, an export cut off right after one of its checkpoints, its
    /// header's count edited to match, cannot be told from a whole one.
    pub trusted_checkpoint: Option<Checkpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub tenant: TenantId,
    pub entries: u64,
    pub checkpoints: u64,
    pub root: Digest,
    pub key_pinned: bool,
    /// The keys the chain was followed through, oldest first.
    pub keys: Vec<PublicKey>,
}

/// Verifies an export, calling `progress` with the bytes read so far.
pub fn verify_export(
    input: &mut dyn BufRead,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    verify_export_visiting(input, options, progress, &mut |_| {})
}

/// [`verify_export`], handing `visit` each entry (with its payload) once
/// its hash and chain link check out. Only a verification that ends `Ok`
/// vouches for what was visited.
pub fn verify_export_visiting(
    input: &mut dyn BufRead,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
    visit: &mut dyn FnMut(AuditRecord),
) -> Result<VerifyReport, VerifyError> {
    let mut line_no = 0u64;
    let mut bytes = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut read_line = |buf: &mut Vec<u8>, line_no: &mut u64| -> Result<bool, VerifyError> {
        buf.clear();
        let n = input.read_until(b'\n', buf).map_err(|e| VerifyError {
            line: *line_no + 1,
            seq: None,
            failure: Failure::Io(e.to_string()),
        })?;
        if n == 0 {
            return Ok(false);
        }
        *line_no += 1;
        bytes += n as u64;
        progress(bytes);
        Ok(true)
    };

    if !read_line(&mut buf, &mut line_no)? {
        return Err(VerifyError {
            line: 1,
            seq: None,
            failure: Failure::Empty,
        });
    }
    let fail = |line, seq, failure| VerifyError { line, seq, failure };
    let header: WireHeader = serde_json::from_slice(&buf)
        .map_err(|e| fail(1, None, Failure::BadHeader(e.to_string())))?;
    let header =
        ExportHeader::from_wire(header).map_err(|e| fail(1, None, Failure::BadHeader(e)))?;
    let expected_origin = checkpoint::origin(&header.tenant);
    let listed = || {
        let keys: Vec<String> = header.keys.iter().map(PublicKey::to_base64).collect();
        keys.join(", ")
    };
    if let Some(trusted) = &options.trusted_key
        && !header.keys.contains(trusted)
    {
        return Err(fail(
            1,
            None,
            Failure::UntrustedKey {
                trusted: trusted.to_base64(),
                found: listed(),
            },
        ));
    }
    // A pinned first key vouches for everything by handing over; a later
    // one only for what its own checkpoints cover.
    let mut trusted_unsigned = options.trusted_key.filter(|k| k != &header.keys[0]);
    let mut keys = KeyChain::new(header.keys.clone(), header.key_name.clone());

    let pinned = match &options.trusted_checkpoint {
        None => None,
        Some(cp) => {
            let bad = |why: String| fail(1, None, Failure::BadTrustedCheckpoint(why));
            if cp.origin != expected_origin {
                return Err(bad(format!(
                    "it is for `{}`, not `{expected_origin}`",
                    cp.origin
                )));
            }
            let key = keys
                .key_of(cp)
                .ok_or_else(|| bad("it is signed by a key the export does not list".into()))?;
            cp.verify(key).map_err(|e| bad(e.to_string()))?;
            Some((cp.size, cp.root))
        }
    };
    let diverges = |size: u64| fail(1, None, Failure::DivergesFromTrusted { size });
    let mut hash_buf = Vec::with_capacity(512);
    let mut range = CompactRange::default();
    if let Some((0, root)) = pinned
        && root != range.root()
    {
        return Err(diverges(0));
    }
    let mut prev_hash = Digest::ZERO;
    let mut last_checkpoint: Option<(u64, Digest)> = None;
    let mut checkpoints = 0u64;
    while read_line(&mut buf, &mut line_no)? {
        let line = line_no;
        let body = parse_body(&buf)
            // A damaged line is named as the entry it stands in for.
            .map_err(|e| fail(line, Some(range.size()), Failure::Malformed(e)))?;
        match body {
            BodyLine::Entry(record) => {
                let AuditRecord { entry, payload } = *record;
                check_entry(
                    &header.tenant,
                    &entry,
                    &payload,
                    range.size(),
                    &prev_hash,
                    &mut hash_buf,
                )
                .map_err(|f| fail(line, Some(range.size()), f))?;
                keys.saw_entry(&entry, &payload)
                    .map_err(|f| fail(line, Some(range.size()), f))?;
                prev_hash = entry.entry_hash;
                range.push_leaf_hash(entry.leaf_hash());
                if let Some((size, root)) = pinned
                    && size == range.size()
                    && root != range.root()
                {
                    return Err(VerifyError {
                        line,
                        ..diverges(size)
                    });
                }
                visit(AuditRecord { entry, payload });
            }
            BodyLine::Checkpoint(CheckpointLine {
                checkpoint: note,
                consistency,
            }) => {
                let cp = Checkpoint::parse_note(&note, &header.key_name)
                    .map_err(|e| fail(line, None, e.into()))?;
                if cp.origin != expected_origin {
                    return Err(fail(
                        line,
                        None,
                        Failure::WrongOrigin {
                            expected: expected_origin,
                            found: cp.origin,
                        },
                    ));
                }
                let signer = keys.check(&cp).map_err(|f| fail(line, None, f))?;
                if trusted_unsigned.as_ref() == Some(signer) {
                    trusted_unsigned = None;
                }
                if cp.size != range.size() {
                    return Err(fail(
                        line,
                        None,
                        Failure::CheckpointMisplaced {
                            claimed: cp.size,
                            seen: range.size(),
                        },
                    ));
                }
                if cp.root != range.root() {
                    return Err(fail(
                        line,
                        None,
                        Failure::CheckpointRootMismatch { size: cp.size },
                    ));
                }
                if let Some((old_size, old_root)) = last_checkpoint {
                    verify_consistency(old_size, cp.size, &old_root, &cp.root, &consistency)
                        .map_err(|e| fail(line, None, Failure::Inconsistent(e)))?;
                }
                last_checkpoint = Some((cp.size, cp.root));
                checkpoints += 1;
            }
        }
    }

    if let Some((trusted, _)) = pinned
        && range.size() < trusted
    {
        return Err(fail(
            line_no,
            Some(range.size()),
            Failure::ShorterThanTrusted {
                trusted,
                found: range.size(),
            },
        ));
    }
    if range.size() != header.entries {
        return Err(fail(
            line_no,
            Some(range.size()),
            Failure::Truncated {
                announced: header.entries,
                found: range.size(),
            },
        ));
    }
    keys.finish().map_err(|f| fail(line_no, None, f))?;
    if let Some(trusted) = trusted_unsigned {
        return Err(fail(
            line_no,
            None,
            Failure::TrustedKeyNeverSigned {
                trusted: trusted.to_base64(),
            },
        ));
    }
    let signed = last_checkpoint.map_or(0, |(size, _)| size);
    if signed < range.size() && !options.allow_unsigned_tail {
        return Err(fail(
            line_no,
            Some(signed),
            Failure::UnsignedTail {
                from: signed,
                to: range.size(),
            },
        ));
    }
    Ok(VerifyReport {
        tenant: header.tenant,
        entries: range.size(),
        checkpoints,
        root: range.root(),
        key_pinned: options.trusted_key.is_some(),
        keys: keys.keys().to_vec(),
    })
}

fn check_entry(
    tenant: &TenantId,
    entry: &AuditEntry,
    payload: &Payload,
    expected_seq: u64,
    prev_hash: &Digest,
    hash_buf: &mut Vec<u8>,
) -> Result<(), Failure> {
    if entry.seq != expected_seq {
        return Err(Failure::OutOfSequence {
            expected: expected_seq,
            found: entry.seq,
        });
    }
    let digest = payload
        .digest()
        .map_err(|e| Failure::Malformed(e.to_string()))?;
    if digest != entry.payload_digest {
        return Err(Failure::PayloadMismatch);
    }
    let hash = entry
        .compute_hash_with(tenant, hash_buf)
        .map_err(|e| Failure::Malformed(e.to_string()))?;
    if hash != entry.entry_hash {
        return Err(Failure::EntryHashMismatch);
    }
    if &entry.prev_hash != prev_hash {
        return Err(Failure::BrokenLink);
    }
    Ok(())
}
