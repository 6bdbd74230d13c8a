//! `aura audit verify`: checks an audit export offline.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use aura_engine::audit::{Checkpoint, VerifyOptions, verify_export};
use aura_engine::identity::PublicKey;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an audit export: entry hashes, chain links, the Merkle tree,
    /// every checkpoint signature and the consistency between checkpoints.
    /// Exits 0 when the export is intact, 1 when it is not.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The export file (JSON Lines, `aura.audit-export/1` or `/2`).
    file: PathBuf,
    /// One of the tenant's public keys (base64 Ed25519), obtained out of
    /// band: its first, or one that signs a checkpoint in the export. The
    /// verifier follows each key rotation recorded in the chain. Without
    /// it the keys inside the export are used, which proves only that
    /// the export is self-consistent.
    #[arg(long, value_name = "BASE64")]
    key: Option<String>,
    /// Accept entries after the last signed checkpoint.
    #[arg(long)]
    allow_unsigned_tail: bool,
    /// A checkpoint of the tenant seen earlier (its signed note, or the
    /// JSON `GET /v1/tenants/{tenant}/audit/checkpoints` lists it in): the
    /// export must extend it. This catches an export cut off after one of
    /// its own checkpoints, which nothing inside the export can reveal.
    #[arg(long, value_name = "FILE")]
    trusted_checkpoint: Option<PathBuf>,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify(args) => verify(args),
    }
}

/// A checkpoint from a file: a signed note, or a checkpoint as the API
/// lists it.
fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<Checkpoint> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(anyhow::Error::from)
    } else {
        Checkpoint::from_note(&text).map_err(anyhow::Error::from)
    };
    parsed.with_context(|| {
        format!(
            "--trusted-checkpoint {} is neither a signed checkpoint note nor a checkpoint as the API lists it",
            path.display()
        )
    })
}

/// The tenant key given with `--key`, if any.
pub(super) fn trusted_key(key: Option<&str>) -> anyhow::Result<Option<PublicKey>> {
    key.map(PublicKey::from_base64)
        .transpose()
        .map_err(|_| anyhow::anyhow!("--key must be a base64 Ed25519 public key (32 bytes)"))
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let trusted_key = trusted_key(args.key.as_deref())?;
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // indicatif draws nothing when stderr is not a terminal; small exports
    // finish before a bar would be useful.
    let bar = if len > 8 * 1024 * 1024 {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} verifying [{bar:40}] {bytes}/{total_bytes} ({eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let trusted_checkpoint = args
        .trusted_checkpoint
        .as_deref()
        .map(read_checkpoint)
        .transpose()?;
    let options = VerifyOptions {
        trusted_key,
        allow_unsigned_tail: args.allow_unsigned_tail,
        trusted_checkpoint,
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let result = verify_export(&mut reader, &options, &mut |bytes| {
        if bytes & 0xFFFF < 256 {
            bar.set_position(bytes);
        }
    });
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            println!(
                "OK: {} entries of tenant `{}` verified; {} signed checkpoints; root {}",
                report.entries, report.tenant, report.checkpoints, report.root
            );
            if let [.., current] = report.keys.as_slice()
                && report.keys.len() > 1
            {
                println!(
                    "the tenant's key rotated {} times; each handover is signed by the outgoing key; current key {}",
                    report.keys.len() - 1,
                    current.to_base64()
                );
            }
            if !report.key_pinned {
                let keys: Vec<String> = report.keys.iter().map(|k| k.to_base64()).collect();
                println!(
                    "note: verified against the keys inside the export ({}); pass --key to pin one of the tenant's published keys",
                    keys.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("FAILED: {err}");
            Ok(ExitCode::from(1))
        }
    }
}
