//! `aura policy test`: runs policy test cases against a bundle directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use aura_engine::policy::testing::{CaseOutcome, TestCase, run_case};
use aura_engine::policy::{BundleSource, CompiledBundle};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a bundle and run test cases against it. Exits 0 when every
    /// case passes, 1 when any fails, 2 when the bundle or cases are invalid.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// A directory with `policies.cedar` and, optionally,
    /// `schema.cedarschema` (AURA's base schema otherwise).
    bundle_dir: PathBuf,
    /// A JSON file with a list of cases: name, principal, action,
    /// resource, context, entities, expect {decision, determining, level}.
    cases: PathBuf,
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Test(args) => test(args),
    }
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let policies_path = args.bundle_dir.join("policies.cedar");
    let policies = std::fs::read_to_string(&policies_path)
        .with_context(|| format!("cannot read {}", policies_path.display()))?;
    let schema_path = args.bundle_dir.join("schema.cedarschema");
    let schema = match std::fs::read_to_string(&schema_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", schema_path.display())),
    };
    let bundle = match CompiledBundle::compile(&BundleSource { policies, schema }) {
        Ok(b) => b,
        Err(e) => bail!("{e}"),
    };
    let text = std::fs::read_to_string(&args.cases)
        .with_context(|| format!("cannot read {}", args.cases.display()))?;
    let cases: Vec<TestCase> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a list of test cases", args.cases.display()))?;
    println!(
        "bundle {} ({} policies), {} cases",
        bundle.version(),
        bundle.policy_ids().len(),
        cases.len()
    );
    let (mut passed, mut failed, mut invalid) = (0, 0, 0);
    for case in &cases {
        match run_case(&bundle, case) {
            CaseOutcome::Pass => {
                passed += 1;
                println!("ok      {}", case.name);
            }
            CaseOutcome::Fail(diffs) => {
                failed += 1;
                println!("FAIL    {}", case.name);
                for d in diffs {
                    println!("        {d}");
                }
            }
            CaseOutcome::Invalid(why) => {
                invalid += 1;
                println!("INVALID {}", case.name);
                println!("        {why}");
            }
        }
    }
    println!("{passed} passed, {failed} failed, {invalid} invalid");
    Ok(if invalid > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
