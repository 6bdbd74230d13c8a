//! The audit verifier must catch every kind of tampering with an export.

use aura_engine::audit::export::Failure;
use aura_engine::audit::merkle::{verify_consistency, verify_inclusion};
use aura_engine::audit::{Checkpoint, VerifyError, VerifyOptions, verify_export, write_export};
use aura_engine::identity::{KeyPair, PublicKey};
use aura_engine::sim::{self, SimRng, WorkloadShape};
use serde_json::Value;

struct Export {
    lines: Vec<String>,
    key: aura_engine::identity::PublicKey,
}

fn export() -> Export {
    let shape = WorkloadShape {
        tenants: 1,
        missions: 40,
        checkpoint_every: 16,
        ..WorkloadShape::default()
    };
    let state = sim::state_after(11, shape);
    let t = state.tenant(&sim::tenant_id(0)).unwrap();
    let mut out = Vec::new();
    write_export(&mut out, t.id(), &t.key_history(), t.audit()).unwrap();
    Export {
        lines: String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
        key: t.public_key(),
    }
}

fn verify_lines(
    lines: &[String],
    key: Option<aura_engine::identity::PublicKey>,
) -> Result<u64, VerifyError> {
    verify_bytes(lines.join("\n").into_bytes(), key)
}

fn verify_bytes(
    mut bytes: Vec<u8>,
    key: Option<aura_engine::identity::PublicKey>,
) -> Result<u64, VerifyError> {
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    let options = VerifyOptions {
        trusted_key: key,
        allow_unsigned_tail: false,
        trusted_checkpoint: None,
    };
    verify_export(&mut bytes.as_slice(), &options, &mut |_| {}).map(|r| r.entries)
}

/// Line numbers (0-based) of entry lines, with their seq.
fn entry_lines(lines: &[String]) -> Vec<(usize, u64)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some((i, v.get("entry")?.get("seq")?.as_u64()?))
        })
        .collect()
}

#[test]
fn intact_export_verifies_with_and_without_a_pinned_key() {
    let e = export();
    let n = entry_lines(&e.lines).len() as u64;
    assert_eq!(verify_lines(&e.lines, Some(e.key)), Ok(n));
    assert_eq!(verify_lines(&e.lines, None), Ok(n));
}

#[test]
fn every_random_single_byte_change_to_an_entry_is_detected_at_that_entry() {
    let e = export();
    let entries = entry_lines(&e.lines);
    let mut rng = SimRng::new(2026);
    let mut checked = 0;
    while checked < 400 {
        let (line_idx, seq) = entries[rng.below(entries.len() as u64) as usize];
        let original = e.lines[line_idx].as_bytes();
        let pos = rng.below(original.len() as u64) as usize;
        let replacement = (rng.below(255) + 1) as u8;
        if replacement == original[pos] {
            continue;
        }
        let mut mutated = original.to_vec();
        mutated[pos] = replacement;
        // A change that parses back to the very same JSON value (such as
        // `1.0` spelled `1e0`) does not change the entry's content.
        let same = serde_json::from_slice::<Value>(&mutated).ok()
            == serde_json::from_slice::<Value>(original).ok();
        if same {
            continue;
        }
        let mut bytes = Vec::new();
        for (i, l) in e.lines.iter().enumerate() {
            if i == line_idx {
                bytes.extend_from_slice(&mutated);
            } else {
                bytes.extend_from_slice(l.as_bytes());
            }
            bytes.push(b'\n');
        }
        let err = verify_bytes(bytes, Some(e.key)).expect_err("tampering must be detected");
        assert_eq!(
            err.seq,
            Some(seq),
            "byte {pos} of entry {seq} changed to {replacement:#x}: {err}"
        );
        checked += 1;
    }
}

#[test]
fn a_deleted_entry_is_detected() {
    let e = export();
    let entries = entry_lines(&e.lines);
    let (idx, seq) = entries[entries.len() / 2];
    let mut lines = e.lines.clone();
    lines.remove(idx);
    let err = verify_lines(&lines, Some(e.key)).unwrap_err();
    assert_eq!(err.seq, Some(seq));
    assert!(
        matches!(err.failure, Failure::OutOfSequence { .. }),
        "{err}"
    );
}

#[test]
fn two_swapped_entries_are_detected() {
    let e = export();
    let entries = entry_lines(&e.lines);
    let (a, seq_a) = entries[5];
    let (b, _) = entries[6];
    let mut lines = e.lines.clone();
    lines.swap(a, b);
    let err = verify_lines(&lines, Some(e.key)).unwrap_err();
    assert_eq!(err.seq, Some(seq_a));
}

#[test]
fn a_truncated_tail_is_detected() {
    let e = export();
    for keep in [e.lines.len() - 1, e.lines.len() - 2, e.lines.len() / 2] {
        let err = verify_lines(&e.lines[..keep], Some(e.key)).unwrap_err();
        assert!(
            matches!(
                err.failure,
                Failure::Truncated { .. } | Failure::UnsignedTail { .. }
            ),
            "keeping {keep} lines: {err}"
        );
    }
}

/// The checkpoints of an export, parsed from their notes.
fn checkpoints(lines: &[String]) -> Vec<(usize, Checkpoint)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some((
                i,
                Checkpoint::from_note(v.get("checkpoint")?.as_str()?).unwrap(),
            ))
        })
        .collect()
}

fn verify_against(
    lines: &[String],
    key: PublicKey,
    trusted: &Checkpoint,
) -> Result<u64, VerifyError> {
    let mut bytes = lines.join("\n").into_bytes();
    bytes.push(b'\n');
    let options = VerifyOptions {
        trusted_key: Some(key),
        allow_unsigned_tail: false,
        trusted_checkpoint: Some(trusted.clone()),
    };
    verify_export(&mut bytes.as_slice(), &options, &mut |_| {}).map(|r| r.entries)
}

/// Cut right after one of its own checkpoints, with the header's count
/// edited to match, an export is whole as far as anything in it can tell;
/// a checkpoint seen earlier is what reveals the cut.
#[test]
fn a_cut_after_a_checkpoint_is_caught_only_against_a_trusted_checkpoint() {
    let e = export();
    let cps = checkpoints(&e.lines);
    assert!(cps.len() >= 3, "the workload signs several checkpoints");
    let (cut_line, cut_at) = cps[cps.len() - 2].clone();
    let (_, latest) = cps.last().unwrap().clone();
    let mut cut: Vec<String> = e.lines[..=cut_line].to_vec();
    let mut header: Value = serde_json::from_str(&cut[0]).unwrap();
    header["entries"] = Value::from(cut_at.size);
    cut[0] = header.to_string();
    assert_eq!(
        verify_lines(&cut, Some(e.key)),
        Ok(cut_at.size),
        "undetectable alone"
    );

    let err = verify_against(&cut, e.key, &latest).unwrap_err();
    assert_eq!(
        err.failure,
        Failure::ShorterThanTrusted {
            trusted: latest.size,
            found: cut_at.size
        },
        "{err}"
    );
    // The whole export extends every checkpoint it holds.
    let n = entry_lines(&e.lines).len() as u64;
    for (_, cp) in &cps {
        assert_eq!(verify_against(&e.lines, e.key, cp), Ok(n));
    }
    // A trusted checkpoint must be the tenant's, signed by its key.
    let other = KeyPair::from_seed([42; 32]).public();
    let err = verify_against(&e.lines, other, &latest).unwrap_err();
    assert!(matches!(err.failure, Failure::UntrustedKey { .. }), "{err}");
    let mut forged = latest.clone();
    forged.size += 1;
    let err = verify_against(&e.lines, e.key, &forged).unwrap_err();
    assert!(
        matches!(err.failure, Failure::BadTrustedCheckpoint(_)),
        "{err}"
    );
}

/// A history rewritten before a trusted checkpoint, even one re-signed
/// throughout by a stolen key, no longer has the trusted root at its size.
#[test]
fn a_history_that_differs_from_a_trusted_checkpoint_fails_where_it_differs() {
    let e = export();
    let cps = checkpoints(&e.lines);
    let (_, trusted) = cps[1].clone();
    // The same seed (so the same tenant key), checkpoints at other places.
    let state = sim::state_after(
        11,
        WorkloadShape {
            tenants: 1,
            missions: 40,
            checkpoint_every: 15,
            ..WorkloadShape::default()
        },
    );
    let t = state.tenant(&sim::tenant_id(0)).unwrap();
    assert_eq!(
        t.public_key(),
        e.key,
        "the same tenant key, another history"
    );
    let mut out = Vec::new();
    write_export(&mut out, t.id(), &t.key_history(), t.audit()).unwrap();
    let other: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(verify_lines(&other, Some(e.key)).is_ok());
    let err = verify_against(&other, e.key, &trusted).unwrap_err();
    assert_eq!(
        err.failure,
        Failure::DivergesFromTrusted { size: trusted.size },
        "{err}"
    );
}

#[test]
fn a_consistently_rewritten_chain_fails_at_the_signed_checkpoint() {
    // The forger edits an entry and recomputes every hash after it; only
    // the tenant's signature on the checkpoints stands in the way.
    let e = export();
    let tenant = sim::tenant_id(0);
    let entries = entry_lines(&e.lines);
    let mut lines = e.lines.clone();
    let mut prev = None;
    for (idx, seq) in &entries {
        let mut rec: aura_engine::audit::AuditRecord = serde_json::from_str(&lines[*idx]).unwrap();
        if *seq == 3 {
            rec.payload = aura_engine::audit::Payload::of_value(
                &serde_json::json!([{"event": "namespace_created", "namespace": "forged", "display_name": "Forged"}]),
            );
            rec.entry.payload_digest = rec.payload.digest().unwrap();
        }
        if let Some(p) = prev {
            rec.entry.prev_hash = p;
        }
        rec.entry.entry_hash = rec.entry.compute_hash(&tenant).unwrap();
        prev = Some(rec.entry.entry_hash);
        lines[*idx] = serde_json::to_string(&rec).unwrap();
    }
    let err = verify_lines(&lines, Some(e.key)).unwrap_err();
    assert!(
        matches!(err.failure, Failure::CheckpointRootMismatch { .. }),
        "{err}"
    );
}

#[test]
fn a_replaced_key_is_caught_by_pinning_and_by_the_signatures() {
    let e = export();
    let mut lines = e.lines.clone();
    let mut header: Value = serde_json::from_str(&lines[0]).unwrap();
    header["public_key"] = Value::String(KeyPair::from_seed([42; 32]).public().to_base64());
    lines[0] = header.to_string();
    let err = verify_lines(&lines, Some(e.key)).unwrap_err();
    assert!(matches!(err.failure, Failure::UntrustedKey { .. }), "{err}");
    // Unpinned, the chain's first entry names the tenant's real key.
    let err = verify_lines(&lines, None).unwrap_err();
    assert!(matches!(err.failure, Failure::KeyHistory(_)), "{err}");
}

#[test]
fn a_tampered_consistency_proof_is_detected() {
    let e = export();
    let idx = e
        .lines
        .iter()
        .position(|l| {
            serde_json::from_str::<Value>(l).unwrap()["consistency"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .expect("a checkpoint with a consistency proof");
    let mut lines = e.lines.clone();
    let mut v: Value = serde_json::from_str(&lines[idx]).unwrap();
    let first = v["consistency"][0].as_str().unwrap().to_owned();
    let flipped = if first.starts_with('0') { "1" } else { "0" }.to_owned() + &first[1..];
    v["consistency"][0] = Value::String(flipped);
    lines[idx] = v.to_string();
    let err = verify_lines(&lines, Some(e.key)).unwrap_err();
    assert!(matches!(err.failure, Failure::Inconsistent(_)), "{err}");
}

#[test]
fn proofs_from_engine_state_verify_and_tampered_ones_fail() {
    let state = sim::state_after(
        5,
        WorkloadShape {
            tenants: 1,
            missions: 30,
            ..WorkloadShape::default()
        },
    );
    let audit = state.tenant(&sim::tenant_id(0)).unwrap().audit();
    let tree = audit.tree();
    let size = tree.len();
    let root = tree.root();
    for (i, e) in audit.entries().enumerate() {
        let leaf = e.leaf_hash();
        let mut proof = tree.inclusion_proof(i as u64, size).unwrap();
        verify_inclusion(i as u64, size, &leaf, &proof, &root).unwrap();
        proof[0].0[7] ^= 0x10;
        assert!(verify_inclusion(i as u64, size, &leaf, &proof, &root).is_err());
    }
    let cps = audit.checkpoints();
    for w in cps.windows(2) {
        let mut proof = tree.consistency_proof(w[0].size, w[1].size).unwrap();
        verify_consistency(w[0].size, w[1].size, &w[0].root, &w[1].root, &proof).unwrap();
        proof.pop();
        assert!(verify_consistency(w[0].size, w[1].size, &w[0].root, &w[1].root, &proof).is_err());
    }
}
