//! The tenant's Cedar policy bundles: uploaded, listed, compared and
//! tested. A bundle's version is the digest of its content, so uploading
//! the same bundle again is harmless.

use std::collections::BTreeMap;
use std::sync::Arc;

use aura_engine::Digest;
use aura_engine::machine::CommandBody;
use aura_engine::policy::testing::{CaseOutcome, TestCase, run_case};
use aura_engine::policy::{BundleSource, CompiledBundle};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::scope::{Admin, Member, TenantScope};
use crate::app::{App, AppError, FieldError};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BundleSummary {
    /// The bundle's version: the digest of its content.
    pub version: String,
    pub policies: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Bundle {
    pub version: String,
    pub policy_ids: Vec<String>,
    pub policies: String,
    pub schema: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BundleDiff {
    pub from: String,
    pub to: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Policies whose text differs.
    pub changed: Vec<String>,
    pub schema_changed: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseResult {
    pub name: String,
    /// `pass`, `fail` or `invalid`.
    pub outcome: String,
    /// For failures, what differed (expected first); for invalid cases,
    /// why.
    pub details: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct TestReport {
    pub passed: usize,
    pub failed: usize,
    pub invalid: usize,
    pub cases: Vec<CaseResult>,
}

/// The version a caller named: anything that is not one names a bundle
/// that does not exist.
pub fn version_of(raw: &str) -> Result<Digest, AppError> {
    Digest::from_hex(raw).map_err(|_| AppError::not_found("policy bundle", raw))
}

fn compiled<R>(
    app: &App,
    scope: &TenantScope<R>,
    version: &Digest,
) -> Result<Arc<CompiledBundle>, AppError> {
    scope
        .read(app, |t| t.compiled_bundle(version).cloned())?
        .ok_or_else(|| AppError::not_found("policy bundle", version.to_hex()))
}

/// Stores a bundle after validating it strictly against its schema; each
/// problem is reported with its policy, line and column.
pub async fn upload(
    app: &App,
    scope: &TenantScope<Admin>,
    source: BundleSource,
) -> Result<BundleSummary, AppError> {
    // Compiled here first so that each problem becomes a field error; the
    // engine compiles it again on apply, on every replica.
    let bundle = CompiledBundle::compile(&source).map_err(|e| {
        AppError::Invalid(
            e.problems
                .iter()
                .map(|p| FieldError {
                    pointer: format!("/{}", p.file),
                    detail: p.to_string(),
                })
                .collect(),
        )
    })?;
    app.propose(
        &scope.tenant,
        scope.actor(),
        CommandBody::PutPolicyBundle { source },
    )
    .await?;
    Ok(BundleSummary {
        version: bundle.version().to_hex(),
        policies: bundle.policy_ids().to_vec(),
    })
}

pub fn list(app: &App, scope: &TenantScope<Member>) -> Result<Vec<BundleSummary>, AppError> {
    scope.read(app, |t| {
        t.bundles()
            .keys()
            .filter_map(|v| {
                t.compiled_bundle(v).map(|b| BundleSummary {
                    version: v.to_hex(),
                    policies: b.policy_ids().to_vec(),
                })
            })
            .collect()
    })
}

/// A bundle with its source.
pub fn get(app: &App, scope: &TenantScope<Member>, version: &Digest) -> Result<Bundle, AppError> {
    scope
        .read(app, |t| {
            let compiled = t.compiled_bundle(version)?;
            let source = t.bundles().get(version)?;
            Some(Bundle {
                version: version.to_hex(),
                policy_ids: compiled.policy_ids().to_vec(),
                policies: source.policies.clone(),
                schema: source.schema.clone(),
            })
        })?
        .ok_or_else(|| AppError::not_found("policy bundle", version.to_hex()))
}

fn policy_texts(b: &CompiledBundle) -> BTreeMap<String, String> {
    b.policies()
        .policies()
        .map(|p| (p.id().to_string(), p.to_string()))
        .collect()
}

/// What changed from bundle `from` to bundle `to`, policy by policy.
pub fn diff(
    app: &App,
    scope: &TenantScope<Member>,
    from: &Digest,
    to: &Digest,
) -> Result<BundleDiff, AppError> {
    let (a, b) = (compiled(app, scope, from)?, compiled(app, scope, to)?);
    let (ta, tb) = (policy_texts(&a), policy_texts(&b));
    let schema_changed = scope.read(app, |t| {
        let schema = |v| t.bundles().get(v).map(|s| s.schema_text().to_owned());
        schema(from) != schema(to)
    })?;
    let only = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.keys().filter(|k| !y.contains_key(*k)).cloned().collect()
    };
    Ok(BundleDiff {
        from: from.to_hex(),
        to: to.to_hex(),
        added: only(&tb, &ta),
        removed: only(&ta, &tb),
        changed: ta
            .iter()
            .filter(|(k, v)| tb.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| k.clone())
            .collect(),
        schema_changed,
    })
}

/// Runs test cases against a bundle (like Cedar's `run-tests`); nothing
/// is changed.
pub fn run_tests(
    app: &App,
    scope: &TenantScope<Member>,
    version: &Digest,
    cases: &[TestCase],
) -> Result<TestReport, AppError> {
    let b = compiled(app, scope, version)?;
    let mut report = TestReport::default();
    for case in cases {
        let (outcome, details) = match run_case(&b, case) {
            CaseOutcome::Pass => {
                report.passed += 1;
                ("pass", Vec::new())
            }
            CaseOutcome::Fail(d) => {
                report.failed += 1;
                ("fail", d)
            }
            CaseOutcome::Invalid(why) => {
                report.invalid += 1;
                ("invalid", vec![why])
            }
        };
        report.cases.push(CaseResult {
            name: case.name.clone(),
            outcome: outcome.into(),
            details,
        });
    }
    Ok(report)
}
