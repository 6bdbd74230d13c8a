//! `aura mission replay`: rebuilds a mission from its tenant's audit
//! export, offline, and checks its digest.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use aura_engine::audit::{AuditRecord, VerifyOptions, verify_export_visiting};
use aura_engine::digest::Digest;
use aura_engine::ids::MissionId;
use aura_engine::machine::{replay_mission, replay_mission_latest_run};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum MissionCommand {
    /// Rebuild a mission from an audit export: verify the export, fold
    /// every event recorded about the mission, and print the rebuilt
    /// mission's digest. With --digest (the `digest` of
    /// GET /v1/tenants/{tenant}/missions/{mission}), exits 0 when the
    /// record rebuilds exactly that mission and 1 when it does not.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The mission's id.
    mission: String,
    /// The tenant's audit export (GET /v1/tenants/{tenant}/audit/export).
    #[arg(long, value_name = "FILE")]
    export: PathBuf,
    /// The tenant's public key (base64 Ed25519), obtained out of band.
    #[arg(long, value_name = "BASE64")]
    key: Option<String>,
    /// The live mission's digest, to check the rebuilt one against.
    #[arg(long, value_name = "HEX")]
    digest: Option<String>,
    /// Fold only the mission's latest run: the entries from the one that
    /// last continued it as new. Without it, every run is folded and each
    /// continuation is checked against the mission rebuilt so far.
    #[arg(long)]
    latest_run: bool,
    /// Write the rebuilt mission here, as JSON.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(cmd: MissionCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MissionCommand::Replay(args) => replay(args),
    }
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let id: MissionId = args
        .mission
        .parse()
        .map_err(|e| anyhow::anyhow!("`{}` is not a mission id: {e}", args.mission))?;
    let expected = args
        .digest
        .as_deref()
        .map(Digest::from_hex)
        .transpose()
        .map_err(|_| anyhow::anyhow!("--digest must be 64 hexadecimal digits"))?;
    let trusted_key = super::audit::trusted_key(args.key.as_deref())?;
    let file = File::open(&args.export)
        .with_context(|| format!("cannot open {}", args.export.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    // The record is the mission's entries; the tail after the last signed
    // checkpoint belongs to it as much as the rest.
    let options = VerifyOptions {
        trusted_key,
        allow_unsigned_tail: true,
        trusted_checkpoint: None,
    };
    let mut records: Vec<AuditRecord> = Vec::new();
    let verified = verify_export_visiting(&mut reader, &options, &mut |_| {}, &mut |r| {
        if r.entry.mission.as_ref() == Some(&id) {
            records.push(r);
        }
    });
    let report = match verified {
        Ok(report) => report,
        Err(err) => {
            println!("FAILED: the export does not verify: {err}");
            return Ok(ExitCode::from(1));
        }
    };
    let rebuilt = if args.latest_run {
        replay_mission_latest_run(&report.tenant, &records, &id)
    } else {
        replay_mission(&report.tenant, &records, &id)
    };
    let mission = match rebuilt {
        Ok(m) => m,
        Err(err) => {
            println!("FAILED: mission `{id}` does not rebuild from its record: {err}");
            return Ok(ExitCode::from(1));
        }
    };
    let digest = mission.digest();
    if let Some(path) = &args.output {
        let json = serde_json::to_vec_pretty(&mission).context("encoding the mission")?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let summary = format!(
        "mission `{id}` of tenant `{}` rebuilt from {} entries, run {}: {:?}, digest {digest}",
        report.tenant,
        if args.latest_run {
            records
                .iter()
                .filter(|r| r.entry.seq >= mission.run().first_seq)
                .count()
        } else {
            records.len()
        },
        mission.run().number,
        mission.state(),
    );
    let code = match expected {
        Some(expected) if expected != digest => {
            println!("FAILED: {summary}; expected {expected}");
            return Ok(ExitCode::from(1));
        }
        Some(_) => {
            println!("OK: {summary}, as expected");
            ExitCode::SUCCESS
        }
        None => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
    };
    if !report.key_pinned {
        println!(
            "note: the export was verified against the key inside it; pass --key to pin the tenant's published key"
        );
    }
    Ok(code)
}
