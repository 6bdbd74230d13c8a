//! `aura simulate`: the engine end to end, without a server.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use aura_engine::audit::write_export;
use aura_engine::machine::EngineState;
use aura_engine::mission::MissionState;
use aura_engine::sim::{self, WorkloadShape};
use clap::Args;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Seed of the workload; the same seed always gives the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of missions.
    #[arg(long, default_value_t = 1000)]
    missions: u32,
    /// Number of tenants.
    #[arg(long, default_value_t = 2)]
    tenants: u32,
    /// Write the first tenant's audit export here.
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    if args.tenants == 0 || args.missions == 0 {
        bail!("--tenants and --missions must be at least 1");
    }
    let shape = WorkloadShape {
        tenants: args.tenants,
        missions: args.missions,
        ..WorkloadShape::default()
    };
    println!(
        "Simulating {} missions over {} tenants (seed {}); the workload is synthetic and runs in memory.",
        args.missions, args.tenants, args.seed
    );
    let commands = sim::generate(args.seed, shape);
    let started = Instant::now();
    let mut state = EngineState::new();
    let (mut applied, mut refused) = (0u64, 0u64);
    for (i, cmd) in commands.iter().enumerate() {
        match state.apply(cmd) {
            Ok(_) => applied += 1,
            Err(_) => refused += 1,
        }
        if i % 97 == 0 {
            state
                .check_invariants()
                .with_context(|| format!("after command {i}"))?;
        }
    }
    state.check_invariants().context("after the last command")?;
    let elapsed = started.elapsed();
    let digest = state.digest();

    let mut replay = EngineState::new();
    for cmd in &commands {
        let _ = replay.apply(cmd);
    }
    if replay.digest() != digest {
        bail!("replaying the same commands gave a different state digest");
    }
    let restored = EngineState::restore(&state.snapshot()).context("snapshot restore")?;
    if restored.digest() != digest {
        bail!("snapshot round trip changed the state digest");
    }

    println!(
        "{} commands: {applied} applied, {refused} refused (illegal moves are refused and audited) in {:.1} ms",
        commands.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    for t in state.tenants() {
        let mut by_state = [0u64; 8];
        let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
        for m in t.missions().values() {
            by_state[m.state() as usize] += 1;
            if let Some(o) = m.outcome() {
                *outcomes
                    .entry(format!("{:?}", o.outcome().kind).to_lowercase())
                    .or_default() += 1;
            }
        }
        let open: u64 = by_state[..MissionState::Closed as usize].iter().sum();
        println!(
            "tenant {}: {} missions ({} open), outcomes {:?}, {} audit entries, {} checkpoints",
            t.id(),
            t.missions().len(),
            open,
            outcomes,
            t.audit().len(),
            t.audit().checkpoints().len()
        );
    }
    println!("state digest {digest} (identical after replay and after snapshot restore)");

    if let Some(path) = args.export {
        let tenant = state
            .tenant(&sim::tenant_id(0))
            .context("first tenant exists")?;
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        write_export(&mut out, tenant.id(), &tenant.key_history(), tenant.audit())?;
        out.flush()?;
        println!(
            "audit export of tenant {} written to {}; check it with:\n  aura audit verify {} --key {}",
            tenant.id(),
            path.display(),
            path.display(),
            tenant.public_key().to_base64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
