//! Snapshot cost as the audit record grows: building a snapshot
//! (`EngineState::snapshot`, which digests the state and encodes it) and
//! digesting the state alone, next to their floor — copying a buffer the
//! size of the snapshot — measured in the same run; and what a node does
//! with a snapshot it reads at start or installs: restore it, check it and
//! keep it as pieces of the restored state, with the digest it was checked
//! against (`RestoredState`) and, side by side, digesting the state again.
//!
//! Run with `cargo bench -p aura-engine --bench snapshot`.

use std::hint::black_box;

use aura_engine::machine::{EngineState, RestoredState};
use aura_engine::sim::{self, WorkloadShape};
use criterion::{Criterion, criterion_group, criterion_main};

fn state_of(missions: u32) -> EngineState {
    let shape = WorkloadShape {
        tenants: 1,
        missions,
        ..WorkloadShape::default()
    };
    sim::state_after(11, shape)
}

fn snapshot(c: &mut Criterion) {
    for missions in [1_000, 4_000] {
        let state = state_of(missions);
        let bytes = state.snapshot();
        let entries: u64 = state.tenants().map(|t| t.audit().len()).sum();
        println!(
            "snapshot/{missions}: {entries} audit entries, snapshot of {} bytes",
            bytes.len()
        );
        let mut g = c.benchmark_group(format!("snapshot/{missions}_missions"));
        g.sample_size(10);
        g.bench_function("floor_copy_snapshot_sized_buffer", |b| {
            b.iter(|| black_box(bytes.clone()))
        });
        g.bench_function("aura_snapshot", |b| b.iter(|| black_box(state.snapshot())));
        g.bench_function("aura_state_digest", |b| {
            b.iter(|| black_box(state.digest()))
        });
        g.bench_function("restore_and_keep_as_pieces", |b| {
            b.iter(|| {
                let restored = RestoredState::of(&bytes).expect("restores");
                black_box(restored.snapshot_pieces())
            })
        });
        g.bench_function("restore_and_keep_as_pieces_digesting_again", |b| {
            b.iter(|| {
                let state = EngineState::restore(&bytes).expect("restores");
                black_box(state.snapshot_pieces())
            })
        });
        g.finish();
    }
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
