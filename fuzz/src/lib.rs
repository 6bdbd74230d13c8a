//! The parsers that take bytes from outside, one target each: what an
//! agent, an admin, a peer, a disk or an auditor's file can hand AURA.
//! Each target must return (never panic, never hang) whatever the bytes,
//! and checks what must hold of what it accepted. libFuzzer runs them
//! (`fuzz_targets/`, `cargo fuzz run <target> --features libfuzzer`), and
//! `tests/properties.rs` runs them under proptest in `./deploy/test`.

use std::sync::OnceLock;

use aura_api::gateway::ToolCallEnvelope;
use aura_engine::audit::{VerifyOptions, verify_export};
use aura_engine::canonical;
use aura_engine::identity::{DualTokenVerifier, KeyPair, Keyring, StaticTrust};
use aura_engine::machine::EngineState;
use aura_engine::policy::bundle::{BundleSource, CompiledBundle};
use aura_engine::time::{Millis, Timestamp};
use serde_json::Value;

/// Canonical encoding of any JSON document: it encodes (JSON has no NaN),
/// the same way twice, and the same after a round trip through JSON text;
/// the value and its JSON-shaped encoding agree.
pub fn canonical(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let bytes = canonical::to_bytes(&value).expect("every JSON value encodes");
    assert_eq!(canonical::to_bytes(&value).unwrap(), bytes);
    let again: Value = serde_json::from_slice(&serde_json::to_vec(&value).unwrap())
        .expect("JSON text serde_json wrote reads back");
    assert_eq!(canonical::to_bytes(&again).unwrap(), bytes);
    assert_eq!(canonical::to_bytes_as_json(&value).unwrap(), bytes);
}

/// The gateway's tool-call envelope, read as `POST /v1/gateway/tool-calls`
/// reads it, then checked as the gateway checks it against a tenant key
/// nobody outside holds: no bytes get through.
pub fn envelope(data: &[u8]) {
    let Ok(envelope) = serde_json::from_slice::<ToolCallEnvelope>(data) else {
        return;
    };
    static TENANT: OnceLock<KeyPair> = OnceLock::new();
    let tenant = TENANT.get_or_init(|| KeyPair::from_seed([0x5a; 32]));
    let trust = StaticTrust {
        keys: Keyring::single(&envelope.call.tenant, tenant.public()),
        revoked: Default::default(),
    };
    let _ = envelope.call.body_digest();
    let verified = DualTokenVerifier::new(Millis::from_secs(300)).verify_signed(
        &trust,
        &envelope.request,
        &envelope.credential,
        &envelope.token,
        envelope.call.as_checked(),
        Timestamp(1_800_000_000_000),
    );
    assert!(verified.is_err(), "a forged envelope was accepted");
}

/// A policy bundle as an admin uploads it: Cedar policies, with or
/// without a schema of their own (the text split at the first NUL).
pub fn bundle(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (policies, schema) = match text.split_once('\0') {
        Some((p, s)) => (p.to_owned(), Some(s.to_owned())),
        None => (text.to_owned(), None),
    };
    let source = BundleSource { policies, schema };
    let _ = source.version();
    let _ = CompiledBundle::compile(&source);
}

/// A Raft log entry as a peer sends it or the log file holds it, and a
/// snapshot as `install-snapshot` receives it.
pub fn raft_entry(data: &[u8]) {
    if let Ok(entry) = serde_json::from_slice::<aura_raft::types::Entry>(data) {
        let written = serde_json::to_vec(&entry).expect("an entry read is written");
        let again: aura_raft::types::Entry = serde_json::from_slice(&written).unwrap();
        assert_eq!(serde_json::to_vec(&again).unwrap(), written);
    }
    let _ = aura_raft::network::decode_snapshot(&bytes::Bytes::copy_from_slice(data));
}

/// An engine snapshot as a peer sends it or a disk holds it: restored
/// only if it matches its own digest, and then written back alike.
pub fn snapshot(data: &[u8]) {
    if let Ok(state) = EngineState::restore(data) {
        let written = state.snapshot();
        let again = EngineState::restore(&written).expect("a snapshot written restores");
        assert_eq!(again.digest(), state.digest());
    }
}

/// An audit export as `aura audit verify` reads it from an auditor's file.
pub fn audit_export(data: &[u8]) {
    let options = VerifyOptions::default();
    let _ = verify_export(&mut &data[..], &options, &mut |_| {});
}
