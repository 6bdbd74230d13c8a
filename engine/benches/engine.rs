//! Engine benchmarks. Each group puts AURA's operation next to its floor,
//! measured in the same run, so the ratio is what to read:
//!
//! * `chain_verify`: recompute and link-check every entry hash vs raw
//!   SHA-256 over the very bytes those hashes cover;
//! * `inclusion_proof`: proof generation in a tree of 10^6 entries;
//! * `apply`: mixed mission workload from the simulator, commands/s;
//! * `dualtoken`: a full DualToken check with a warm cache vs one bare
//!   Ed25519 verification of the same request.
//!
//! Run with `cargo bench -p aura-engine`.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use aura_engine::audit::merkle::{MerkleTree, leaf_hash};
use aura_engine::canonical;
use aura_engine::digest::Digest;
use aura_engine::identity::dualtoken::REQUEST_DOMAIN;
use aura_engine::identity::{
    AgentCredential, AgentIdentityClaims, DualTokenVerifier, ExecutionToken, ExecutionTokenClaims,
    InMemoryNonceStore, KeyPair, Keyring, RequestClaims, SignedRequest, StaticTrust, ToolCall,
};
use aura_engine::machine::EngineState;
use aura_engine::sim::{self, WorkloadShape};
use aura_engine::time::{Millis, Timestamp};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn chain_verify(c: &mut Criterion) {
    let shape = WorkloadShape {
        tenants: 1,
        missions: 1500,
        ..WorkloadShape::default()
    };
    let state = sim::state_after(42, shape);
    let tenant = sim::tenant_id(0);
    let records = state.tenant(&tenant).unwrap().audit().to_records();
    // The exact framed messages whose SHA-256 are the entry hashes.
    let messages: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut e = r.entry.clone();
            let want = e.entry_hash;
            e.entry_hash = Digest::ZERO;
            let msg = aura_engine::audit::chain::entry_message(&tenant, &e).unwrap();
            assert_eq!(Digest::of(&msg), want);
            msg
        })
        .collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("chain_verify");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("raw_sha256_same_bytes", |b| {
        b.iter(|| {
            for m in &messages {
                black_box(Sha256::digest(m));
            }
        })
    });
    g.bench_function("aura_verify_chain", |b| {
        b.iter(|| {
            let mut prev = Digest::ZERO;
            let mut buf = Vec::with_capacity(512);
            for r in &records {
                let e = &r.entry;
                assert_eq!(e.prev_hash, prev);
                assert_eq!(
                    e.compute_hash_with(&tenant, &mut buf).unwrap(),
                    e.entry_hash
                );
                prev = e.entry_hash;
            }
        })
    });
    g.finish();
}

fn inclusion_proof(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let mut tree = MerkleTree::new();
    for i in 0..N {
        tree.push_leaf_hash(leaf_hash(&i.to_be_bytes()));
    }
    let mut g = c.benchmark_group("inclusion_proof");
    let counter = AtomicU64::new(1);
    g.bench_function("generate_at_1e6_entries", |b| {
        b.iter(|| {
            // Spread indexes over the whole tree, including the ragged
            // right edge where subtrees must be hashed on the fly.
            let i = counter.fetch_add(7_919, Ordering::Relaxed) % N;
            black_box(tree.inclusion_proof(i, N).unwrap())
        })
    });
    g.bench_function("generate_at_1e6_entries_worst_index", |b| {
        b.iter(|| black_box(tree.inclusion_proof(N - 1, N).unwrap()))
    });
    g.finish();
}

fn apply(c: &mut Criterion) {
    let shape = WorkloadShape {
        tenants: 4,
        missions: 2000,
        ..WorkloadShape::default()
    };
    let commands = sim::generate(7, shape);
    let mut g = c.benchmark_group("apply");
    g.sample_size(10);
    g.throughput(Throughput::Elements(commands.len() as u64));
    g.bench_function("mixed_mission_workload", |b| {
        b.iter_batched(
            EngineState::new,
            |mut state| {
                for cmd in &commands {
                    let _ = black_box(state.apply(cmd));
                }
                state
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn dualtoken(c: &mut Criterion) {
    let now = Timestamp(1_795_000_000_000);
    let tenant_key = KeyPair::from_seed([1; 32]);
    let agent_key = KeyPair::from_seed([2; 32]);
    let tenant = "acme".parse().unwrap();
    let mission = "m-1".parse().unwrap();
    let tool = "crm.lookup".parse().unwrap();
    let args = json!({"customer": 42});
    let credential = AgentCredential::issue(
        AgentIdentityClaims {
            tenant: "acme".parse().unwrap(),
            agent: "agent-1".parse().unwrap(),
            org_unit: "sales".parse().unwrap(),
            agent_key: agent_key.public(),
            serial: 1,
            not_before: Timestamp(0),
            not_after: Timestamp(i64::MAX / 2),
        },
        &tenant_key,
    )
    .unwrap();
    let token = ExecutionToken::issue(
        ExecutionTokenClaims {
            token: "tok-1".parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            mission: "m-1".parse().unwrap(),
            agent: "agent-1".parse().unwrap(),
            allowed_tools: BTreeSet::from(["crm.lookup".parse().unwrap()]),
            parameters: BTreeMap::new(),
            issued_at: Timestamp(0),
            expires_at: Timestamp(i64::MAX / 2),
            boundary_digest: Digest::of(b"b"),
        },
        &tenant_key,
    )
    .unwrap();
    let trust = StaticTrust {
        keys: Keyring::single(&tenant, tenant_key.public()),
        revoked: BTreeSet::new(),
    };
    let sign = |n: u64| {
        SignedRequest::sign(
            RequestClaims {
                method: "POST".into(),
                path: "/v1/gateway/tool-calls".into(),
                body_digest: Digest::of(b"{\"customer\":42}"),
                timestamp: now,
                nonce: format!("nonce-{n:016}"),
                credential_serial: 1,
                token: "tok-1".parse().unwrap(),
            },
            &agent_key,
        )
        .unwrap()
    };
    // Pre-signed requests with distinct nonces: signing is the agent's
    // cost, not the gateway's.
    let requests: Vec<SignedRequest> = (0..200_000).map(sign).collect();
    let verifier = DualTokenVerifier::new(Millis(30_000));
    let nonces = InMemoryNonceStore::default();
    let call = ToolCall {
        tenant: &tenant,
        mission: &mission,
        tool: &tool,
        arguments: &args,
    };
    // Warm the cache.
    verifier
        .verify(
            &nonces,
            &trust,
            &requests[0],
            &credential,
            &token,
            call,
            now,
        )
        .unwrap();

    let mut g = c.benchmark_group("dualtoken");
    let next = AtomicU64::new(1);
    g.bench_function("aura_check_warm_cache", |b| {
        b.iter(|| {
            let i = next.fetch_add(1, Ordering::Relaxed) as usize;
            assert!(
                i < requests.len(),
                "raise the number of pre-signed requests"
            );
            black_box(
                verifier
                    .verify(
                        &nonces,
                        &trust,
                        &requests[i],
                        &credential,
                        &token,
                        call,
                        now,
                    )
                    .unwrap(),
            )
        })
    });
    let request = &requests[0];
    let message = canonical::message(REQUEST_DOMAIN, &request.claims).unwrap();
    g.bench_function("bare_ed25519_verify", |b| {
        b.iter(|| {
            agent_key
                .public()
                .verify_raw(black_box(&message), &request.signature)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, chain_verify, inclusion_proof, apply, dualtoken);
criterion_main!(benches);
