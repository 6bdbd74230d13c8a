//! Policy test cases, in the spirit of Cedar's `run-tests`: a request and
//! its entities, and the decision and determining policies expected.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mission::AuthorityLevel;
use crate::policy::bundle::CompiledBundle;
use crate::policy::decision::{
    Decision, EntityRef, PolicyRequest, PreparedEntities, cedar_request, decide,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Expectation {
    pub decision: Decision,
    /// When given, exactly these policies must determine the decision.
    #[serde(default)]
    pub determining: Option<Vec<String>>,
    /// For ESCALATE: the level it must ask for.
    #[serde(default)]
    pub level: Option<AuthorityLevel>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestCase {
    pub name: String,
    pub principal: EntityRef,
    pub action: EntityRef,
    pub resource: EntityRef,
    #[serde(default = "empty_object")]
    pub context: Value,
    /// Entities in Cedar's JSON format.
    #[serde(default = "empty_array")]
    pub entities: Value,
    /// The level an escalation without `@level` asks for.
    #[serde(default = "default_level")]
    pub default_level: AuthorityLevel,
    pub expect: Expectation,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}
fn empty_array() -> Value {
    Value::Array(Vec::new())
}
fn default_level() -> AuthorityLevel {
    AuthorityLevel::L1
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseOutcome {
    Pass,
    /// Each line says what differed, expected first.
    Fail(Vec<String>),
    /// The case itself is malformed (unknown entity types, a request the
    /// schema does not allow, …).
    Invalid(String),
}

/// Runs one case. Requests and entities are checked against the bundle's
/// schema first, so that a malformed case is explained rather than
/// silently denied.
pub fn run_case(bundle: &CompiledBundle, case: &TestCase) -> CaseOutcome {
    let request = PolicyRequest {
        principal: case.principal.clone(),
        action: case.action.clone(),
        resource: case.resource.clone(),
        context: case.context.clone(),
    };
    if let Err(e) = cedar_request(&request, Some(bundle.schema())) {
        return CaseOutcome::Invalid(format!("request: {e}"));
    }
    let entities = match PreparedEntities::from_json(&case.entities, Some(bundle.schema())) {
        Ok(e) => e,
        Err(e) => return CaseOutcome::Invalid(format!("entities: {e}")),
    };
    let record = decide(bundle, &request, &entities, case.default_level);
    let mut diffs = Vec::new();
    if record.decision != case.expect.decision {
        diffs.push(format!(
            "decision: expected {:?}, got {:?}",
            case.expect.decision, record.decision
        ));
    }
    if let Some(expected) = &case.expect.determining {
        let mut expected = expected.clone();
        expected.sort();
        let missing: Vec<_> = expected
            .iter()
            .filter(|p| !record.determining.contains(p))
            .collect();
        let extra: Vec<_> = record
            .determining
            .iter()
            .filter(|p| !expected.contains(p))
            .collect();
        if !missing.is_empty() {
            diffs.push(format!("determining: expected but absent: {missing:?}"));
        }
        if !extra.is_empty() {
            diffs.push(format!("determining: present but not expected: {extra:?}"));
        }
    }
    if let Some(level) = case.expect.level
        && record.required_level != Some(level)
    {
        diffs.push(format!(
            "level: expected {level}, got {}",
            record
                .required_level
                .map_or("none".into(), |l| l.to_string())
        ));
    }
    if !record.errors.is_empty() && !diffs.is_empty() {
        diffs.push(format!("evaluation errors: {:?}", record.errors));
    }
    if diffs.is_empty() {
        CaseOutcome::Pass
    } else {
        CaseOutcome::Fail(diffs)
    }
}
