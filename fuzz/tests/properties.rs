//! The fuzz targets as property tests, run by `./deploy/test` on the
//! stable toolchain with a bounded number of cases each. The strategies
//! cover what SDKs in other languages must match: non-ASCII and escaped
//! strings, large and negative integers at their bounds, deep nesting,
//! duplicate keys; and, for each parser, valid inputs with bytes changed.

use std::collections::{BTreeMap, BTreeSet};

use aura_api::gateway::{TOOL_CALLS_PATH, ToolCallEnvelope};
use aura_engine::digest::Digest;
use aura_engine::identity::{
    AgentCredential, AgentIdentityClaims, ExecutionToken, ExecutionTokenClaims, KeyPair,
    RequestClaims, SignedRequest,
};
use aura_engine::mission::ToolCallRequest;
use aura_engine::time::Timestamp;
use proptest::prelude::*;
use serde_json::{Value, json};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn strings() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\\\\"\\n\\t\\u{0}-\\u{1f}\\u{7f}\\u{2028}\\u{ffff}é漢🦀]{0,12}",
    ]
}

fn json_values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1i64),
            Just(0i64),
            Just(1i64 << 53),
            Just(-(1i64 << 53) - 1)
        ]
        .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        strings().prop_map(Value::from),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(strings(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON text beyond what serializing a value gives: duplicate keys,
/// nesting deeper than parsers allow, escapes spelled differently.
fn json_texts() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_values().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (strings(), json_values(), json_values()).prop_map(|(k, a, b)| {
            let k = serde_json::to_string(&k).unwrap();
            format!("{{{k}:{a},{k}:{b}}}").into_bytes()
        }),
        (1usize..400).prop_map(|depth| {
            let mut s = "[".repeat(depth);
            s.push_str(&"]".repeat(depth));
            s.into_bytes()
        }),
        Just(br#"["\u00e9","\u00E9","\uD83E\uDD80","\ud800"]"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// A well-formed envelope whose credential and token a forger signed.
fn forged_envelope(arguments: Value, nonce: String) -> ToolCallEnvelope {
    let forger = KeyPair::from_seed([7; 32]);
    let agent = KeyPair::from_seed([8; 32]);
    let at = Timestamp(1_800_000_000_000);
    let credential = AgentCredential::issue(
        AgentIdentityClaims {
            tenant: "acme".parse().unwrap(),
            agent: "bot".parse().unwrap(),
            org_unit: "ops".parse().unwrap(),
            agent_key: agent.public(),
            serial: 1,
            not_before: Timestamp(0),
            not_after: Timestamp(i64::MAX),
        },
        &forger,
    )
    .unwrap();
    let token = ExecutionToken::issue(
        ExecutionTokenClaims {
            token: "tok-1".parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            mission: "m1".parse().unwrap(),
            agent: "bot".parse().unwrap(),
            allowed_tools: BTreeSet::from(["search".parse().unwrap()]),
            parameters: BTreeMap::new(),
            issued_at: Timestamp(0),
            expires_at: Timestamp(i64::MAX),
            boundary_digest: Digest([1; 32]),
        },
        &forger,
    )
    .unwrap();
    let call = ToolCallRequest {
        tenant: "acme".parse().unwrap(),
        mission: "m1".parse().unwrap(),
        step: 0,
        call: 0,
        tool: "search".parse().unwrap(),
        arguments,
    };
    let claims = RequestClaims {
        method: "POST".into(),
        path: TOOL_CALLS_PATH.into(),
        body_digest: call.body_digest().unwrap(),
        timestamp: at,
        nonce,
        credential_serial: 1,
        token: "tok-1".parse().unwrap(),
    };
    ToolCallEnvelope {
        call,
        credential,
        token,
        request: SignedRequest::sign(claims, &agent).unwrap(),
    }
}

/// `bytes` with some of them changed, cut or repeated.
fn mutated(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = bytes.len().max(1);
    prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..6).prop_map(move |edits| {
        let mut b = bytes.clone();
        for (at, byte, how) in edits {
            let at = at.min(b.len().saturating_sub(1));
            match how {
                0 if !b.is_empty() => b[at] = byte,
                1 => b.truncate(at),
                _ => b.insert(at.min(b.len()), byte),
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Found by `canonical_encoding`: serde_json parsed some floats a few
    /// ULPs off until its `float_roundtrip` feature was on, so a body an
    /// SDK had digested read back with other canonical bytes.
    #[test]
    fn floats_read_back_exactly(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let read: f64 = serde_json::from_slice(&serde_json::to_vec(&f).unwrap()).unwrap();
        prop_assert_eq!(read.to_bits(), f.to_bits());
    }

    #[test]
    fn canonical_encoding(text in json_texts()) {
        aura_fuzz::canonical(&text);
    }

    #[test]
    fn bundle_upload(text in prop_oneof![
        any::<String>(),
        "(permit|forbid)\\(principal(, action)?(, resource)?\\)( when \\{ [a-z.\"= ]{0,20} \\})?;",
        Just("@id(\"a\") permit(principal, action, resource);\0entity User;".to_owned()),
    ]) {
        aura_fuzz::bundle(text.as_bytes());
    }

    #[test]
    fn audit_export_verifier(bytes in prop_oneof![
        json_texts(),
        prop::collection::vec(json_values(), 0..4).prop_map(|lines| {
            lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n").into_bytes()
        }),
    ]) {
        aura_fuzz::audit_export(&bytes);
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn envelopes_signed_by_anyone_but_the_tenant_are_refused(
        arguments in json_values(),
        nonce in "[ -~]{16,40}",
    ) {
        let envelope = forged_envelope(json!({"q": arguments}), nonce);
        aura_fuzz::envelope(&serde_json::to_vec(&envelope).unwrap());
    }

    #[test]
    fn changed_envelopes_never_get_through(
        bytes in mutated(serde_json::to_vec(&forged_envelope(json!({"q": 1}), "n".repeat(16))).unwrap()),
    ) {
        aura_fuzz::envelope(&bytes);
    }

    #[test]
    fn raft_entries_and_snapshots(bytes in prop_oneof![
        json_texts(),
        mutated(raft_entry_bytes()),
        mutated(aura_raft::network::encode_snapshot(
            &aura_raft::types::Vote::new(1, 1),
            &Default::default(),
            &[&aura_engine::machine::EngineState::new().snapshot()],
        )),
    ]) {
        aura_fuzz::raft_entry(&bytes);
    }

    #[test]
    fn engine_snapshots(bytes in mutated(small_snapshot())) {
        aura_fuzz::snapshot(&bytes);
    }
}

/// A log entry as the log file holds it.
fn raft_entry_bytes() -> Vec<u8> {
    br#"{"log_id":{"leader_id":{"term":1,"node_id":1},"index":3},"payload":"Blank"}"#.to_vec()
}

/// A snapshot of a state with one tenant and a few missions.
fn small_snapshot() -> Vec<u8> {
    aura_engine::sim::state_after(
        3,
        aura_engine::sim::WorkloadShape {
            tenants: 1,
            missions: 2,
            ..Default::default()
        },
    )
    .snapshot()
}

#[test]
fn the_seeds_are_what_the_targets_accept() {
    // The mutations start from inputs each parser takes whole, so the
    // properties exercise what lies past the first syntax check.
    let entry: aura_raft::types::Entry = serde_json::from_slice(&raft_entry_bytes()).unwrap();
    assert_eq!(entry.log_id.index, 3);
    let snapshot = small_snapshot();
    assert!(aura_engine::machine::EngineState::restore(&snapshot).is_ok());
    aura_fuzz::snapshot(&snapshot);
    let envelope = serde_json::to_vec(&forged_envelope(json!({}), "n".repeat(16))).unwrap();
    assert!(serde_json::from_slice::<ToolCallEnvelope>(&envelope).is_ok());
}
