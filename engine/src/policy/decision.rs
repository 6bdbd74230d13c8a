//! The decision layer: turns Cedar's Allow/Deny into PERMIT / DENY /
//! ESCALATE, failing closed, and records why.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, Response,
    RestrictedExpression,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::mission::AuthorityLevel;
use crate::policy::bundle::CompiledBundle;
use crate::policy::direct::{DirectEntities, DirectRequest, DirectResponse};

pub const DECISION_INPUT_DOMAIN: Domain = Domain::new("aura.decision-input/1");
pub const ENTITIES_DOMAIN: Domain = Domain::new("aura.policy-entities/1");

/// Ordered from least to most strict, so the strictest of several
/// decisions is their maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Decision {
    Permit,
    Escalate,
    Deny,
}

/// An entity reference such as `Aura::Agent::"bot-1"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl EntityRef {
    pub fn new(kind: &str, id: impl Into<String>) -> EntityRef {
        EntityRef {
            kind: kind.to_owned(),
            id: id.into(),
        }
    }

    pub(crate) fn to_cedar(&self) -> Result<EntityUid, String> {
        let kind = type_name(&self.kind)?;
        Ok(EntityUid::from_type_name_and_id(
            kind,
            EntityId::new(&self.id),
        ))
    }
}

/// Parses entity type names once: parsing goes through Cedar's full
/// grammar, and requests name the same few types over and over.
fn type_name(kind: &str) -> Result<EntityTypeName, String> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<String, EntityTypeName>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(kind) {
        return Ok(t.clone());
    }
    let parsed = EntityTypeName::from_str(kind)
        .map_err(|e| format!("`{kind}` is not an entity type name: {e}"))?;
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: names come from bundles' schemas and test cases, but a
    // stream of bad requests must not grow it without end.
    if map.len() >= 1024 {
        map.clear();
    }
    map.insert(kind.to_owned(), parsed.clone());
    Ok(parsed)
}

/// A request to decide: who does what to what, in which context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    pub principal: EntityRef,
    pub action: EntityRef,
    pub resource: EntityRef,
    pub context: Value,
}

/// The entities a decision may look at, parsed once, with their digest.
#[derive(Clone, Debug)]
pub struct PreparedEntities {
    /// Cedar's entities: built up front, or from `deferred` when the
    /// first request the direct path cannot decide needs them. Building
    /// them (the transitive closure above all) was a third of preparing a
    /// mission's entities, for requests that mostly never read them.
    cedar: OnceLock<Result<Entities, String>>,
    /// What Cedar's set is built from: entities shared with other sets
    /// (a mission's stem), then this set's own.
    deferred: (Arc<[Entity]>, Vec<Entity>),
    direct: DirectEntities,
    digest: Digest,
}

/// The digest of entities in Cedar's JSON format, as decisions record it.
fn entities_digest(json: &(impl Serialize + ?Sized)) -> Result<Digest, String> {
    canonical::digest(ENTITIES_DOMAIN, json).map_err(|e| e.to_string())
}

impl PreparedEntities {
    /// Entities in Cedar's JSON format. With a schema, they are checked
    /// against it (unknown types, wrong attributes), which `aura policy
    /// test` uses to explain malformed cases.
    pub fn from_json(
        json: &Value,
        schema: Option<&cedar_policy::Schema>,
    ) -> Result<PreparedEntities, String> {
        let entities = Entities::from_json_value(json.clone(), schema).map_err(|e| {
            let mut msg = e.to_string();
            if let Some(help) = miette::Diagnostic::help(&e) {
                msg.push_str(&format!(" ({help})"));
            }
            msg
        })?;
        PreparedEntities::from_parts(json, entities)
    }

    /// Entities built directly, with the JSON they were rendered to for
    /// the record; the caller guarantees the two describe the same set.
    pub(crate) fn from_parts(
        json: &(impl Serialize + ?Sized),
        entities: Entities,
    ) -> Result<PreparedEntities, String> {
        let digest = entities_digest(json)?;
        Ok(PreparedEntities {
            direct: DirectEntities::of(&entities),
            cedar: OnceLock::from(Ok(entities)),
            deferred: (Arc::from([]), Vec::new()),
            digest,
        })
    }

    /// Entities whose Cedar set is built only if a decision needs it;
    /// `direct` must be [`DirectEntities::closed`] over `entities`, which
    /// guarantees that Cedar's build holds the same set.
    pub(crate) fn deferred(
        json: &(impl Serialize + ?Sized),
        entities: Vec<Entity>,
        direct: DirectEntities,
    ) -> Result<PreparedEntities, String> {
        let digest = entities_digest(json)?;
        Ok(PreparedEntities::layered(
            digest,
            (Arc::from([]), entities),
            direct,
        ))
    }

    /// Entities whose Cedar set is built only if a decision needs it, from
    /// `deferred` (shared entities, then own ones) whose JSON digests to
    /// `digest`; `direct` must be what [`DirectEntities::closed`] makes
    /// of them all.
    pub(crate) fn layered(
        digest: Digest,
        deferred: (Arc<[Entity]>, Vec<Entity>),
        direct: DirectEntities,
    ) -> PreparedEntities {
        PreparedEntities {
            cedar: OnceLock::new(),
            deferred,
            direct,
            digest,
        }
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }

    #[cfg(test)]
    pub(crate) fn direct(&self) -> &DirectEntities {
        &self.direct
    }

    /// Cedar's entities, built now if they were deferred. A build that
    /// fails is an evaluation error of every request that needs it.
    pub fn cedar(&self) -> Result<&Entities, &str> {
        self.cedar
            .get_or_init(|| {
                let (shared, own) = &self.deferred;
                Entities::from_entities(shared.iter().chain(own).cloned(), None)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// What was decided and why. Audited with the command that needed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecord {
    pub decision: Decision,
    /// The policies that determined the decision, sorted.
    pub determining: Vec<String>,
    /// Evaluation errors (any of them forces DENY), sorted.
    pub errors: Vec<String>,
    pub bundle: Digest,
    /// For ESCALATE: the approval level required.
    pub required_level: Option<AuthorityLevel>,
    /// The approval level the mission or step already held; an ESCALATE
    /// it satisfies is recorded as PERMIT with the policies that asked.
    pub granted_level: Option<AuthorityLevel>,
    pub input_digest: Digest,
}

#[derive(Serialize)]
struct InputDigest<'a> {
    bundle: &'a Digest,
    request: &'a PolicyRequest,
    entities: &'a Digest,
}

/// Builds the Cedar request. With a schema the request is validated
/// against it, for explanatory errors in test runs; the engine's own
/// requests are built without (their policies were validated strictly when
/// the bundle was accepted, and evaluation errors fail closed).
pub fn cedar_request(
    req: &PolicyRequest,
    schema: Option<&cedar_policy::Schema>,
) -> Result<Request, String> {
    let context = match plain_context(&req.context) {
        Some(pairs) => Context::from_pairs(pairs).map_err(|e| format!("context: {e}"))?,
        None => Context::from_json_value(req.context.clone(), None)
            .map_err(|e| format!("context: {e}"))?,
    };
    Request::new(
        req.principal.to_cedar()?,
        req.action.to_cedar()?,
        req.resource.to_cedar()?,
        context,
        schema,
    )
    .map_err(|e| {
        let mut msg = e.to_string();
        if let Some(help) = miette::Diagnostic::help(&e) {
            msg.push_str(&format!(" ({help})"));
        }
        msg
    })
}

/// The context built directly, when `value` uses only JSON that Cedar
/// reads one way without a schema: objects as records, arrays as sets,
/// strings, booleans, 64-bit integers, and `{"__entity": {"type", "id"}}`
/// references. Anything else (`null`, fractions, other `__` escapes) is
/// `None`, and Cedar's own parser reads it, errors included. Parsing the
/// context's JSON took about 7% of the CPU of a full mission run.
fn plain_context(value: &Value) -> Option<Vec<(String, RestrictedExpression)>> {
    value
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), plain_expression(v)?)))
        .collect()
}

/// One JSON value as Cedar reads it without a schema, one level deep, or
/// `None` where Cedar reads it its own way (`null`, fractions, numbers
/// beyond 64 bits, `__` escapes other than a plain entity reference). The
/// one statement of that rule: the context builder, the check that a
/// context is plain and the direct evaluator all read values through it.
pub(crate) enum PlainValue<'a> {
    String(&'a str),
    Bool(bool),
    Long(i64),
    Set(&'a [Value]),
    Record(&'a Map<String, Value>),
    Entity(EntityUid),
}

pub(crate) fn plain_value(value: &Value) -> Option<PlainValue<'_>> {
    Some(match value {
        Value::String(s) => PlainValue::String(s),
        Value::Bool(b) => PlainValue::Bool(*b),
        Value::Number(n) => PlainValue::Long(n.as_i64()?),
        Value::Array(items) => PlainValue::Set(items),
        Value::Object(fields) => match fields.get("__entity") {
            Some(target) => {
                let target = target
                    .as_object()
                    .filter(|t| fields.len() == 1 && t.len() == 2)?;
                let (kind, id) = (target.get("type")?.as_str()?, target.get("id")?.as_str()?);
                PlainValue::Entity(EntityRef::new(kind, id).to_cedar().ok()?)
            }
            None if fields.keys().any(|k| k.starts_with("__")) => return None,
            None => PlainValue::Record(fields),
        },
        Value::Null => return None,
    })
}

fn plain_expression(value: &Value) -> Option<RestrictedExpression> {
    Some(match plain_value(value)? {
        PlainValue::String(s) => RestrictedExpression::new_string(s.to_owned()),
        PlainValue::Bool(b) => RestrictedExpression::new_bool(b),
        PlainValue::Long(n) => RestrictedExpression::new_long(n),
        PlainValue::Set(items) => RestrictedExpression::new_set(
            items
                .iter()
                .map(plain_expression)
                .collect::<Option<Vec<_>>>()?,
        ),
        PlainValue::Record(fields) => RestrictedExpression::new_record(
            fields
                .iter()
                .map(|(k, v)| Some((k.clone(), plain_expression(v)?)))
                .collect::<Option<Vec<_>>>()?,
        )
        .ok()?,
        PlainValue::Entity(uid) => RestrictedExpression::new_entity_uid(uid),
    })
}

/// Whether [`plain_context`] accepts `value`, checked without building
/// anything.
fn is_plain(value: &Value) -> bool {
    fn plain(value: &Value) -> bool {
        match plain_value(value) {
            None => false,
            Some(PlainValue::Set(items)) => items.iter().all(plain),
            Some(PlainValue::Record(fields)) => fields.values().all(plain),
            Some(_) => true,
        }
    }
    value
        .as_object()
        .is_some_and(|fields| fields.values().all(plain))
}

/// One authorizer for the process: making one is far from free, and it
/// holds no state between requests.
fn authorizer() -> &'static Authorizer {
    static AUTHORIZER: std::sync::OnceLock<Authorizer> = std::sync::OnceLock::new();
    AUTHORIZER.get_or_init(Authorizer::new)
}

/// Decides `req` against `bundle`. Never fails: anything that goes wrong
/// is a DENY whose record says why.
pub fn decide(
    bundle: &CompiledBundle,
    req: &PolicyRequest,
    entities: &PreparedEntities,
    default_level: AuthorityLevel,
) -> DecisionRecord {
    let input_digest = canonical::digest(
        DECISION_INPUT_DOMAIN,
        &InputDigest {
            bundle: &bundle.version(),
            request: req,
            entities: &entities.digest,
        },
    )
    .unwrap_or(Digest::ZERO);
    let mut record = DecisionRecord {
        decision: Decision::Deny,
        determining: Vec::new(),
        errors: Vec::new(),
        bundle: bundle.version(),
        required_level: None,
        granted_level: None,
        input_digest,
    };
    if let Some(response) = decide_directly(bundle, req, entities) {
        interpret_outcome(
            bundle,
            response.allow,
            response.determining,
            Vec::new(),
            default_level,
            &mut record,
        );
        return record;
    }
    decide_with_cedar(bundle, req, entities, default_level, record)
}

/// Cedar's response computed by the direct evaluator, when the request,
/// its context and its slice are all within the direct subset.
fn decide_directly(
    bundle: &CompiledBundle,
    req: &PolicyRequest,
    entities: &PreparedEntities,
) -> Option<DirectResponse> {
    let context = req.context.as_object().filter(|_| is_plain(&req.context))?;
    let (principal, action, resource) = (
        req.principal.to_cedar().ok()?,
        req.action.to_cedar().ok()?,
        req.resource.to_cedar().ok()?,
    );
    bundle.slicer().decide_directly(
        &DirectRequest {
            principal: &principal,
            action: &action,
            resource: &resource,
            context,
        },
        &entities.direct,
    )
}

fn decide_with_cedar(
    bundle: &CompiledBundle,
    req: &PolicyRequest,
    entities: &PreparedEntities,
    default_level: AuthorityLevel,
    mut record: DecisionRecord,
) -> DecisionRecord {
    match cedar_request(req, None) {
        Ok(request) => {
            let (Some(principal), Some(action)) = (request.principal(), request.action()) else {
                record
                    .errors
                    .push("malformed request: no principal or action".into());
                return record;
            };
            // Only the policies whose scope can match are evaluated; see
            // `PolicySlicer` for why the response is the same.
            let cedar = match entities.cedar() {
                Ok(c) => c,
                Err(e) => {
                    record.errors.push(format!("entities: {e}"));
                    return record;
                }
            };
            let slice = bundle.slicer().slice(principal, action, cedar);
            let response = authorizer().is_authorized(&request, &slice, cedar);
            interpret(bundle, &response, default_level, &mut record);
        }
        Err(e) => record.errors.push(format!("malformed request: {e}")),
    }
    record
}

/// The five rules, in order:
/// 1. any evaluation error → DENY (Cedar alone would skip the erroring
///    policy, which can fail open);
/// 2. Allow → PERMIT;
/// 3. Deny with no determining policy → DENY (default deny);
/// 4. Deny where any determining forbid lacks `@escalate` → DENY;
/// 5. otherwise ESCALATE to the highest `@level` among the determining
///    forbids (or `default_level` if none names one).
pub fn interpret(
    bundle: &CompiledBundle,
    response: &Response,
    default_level: AuthorityLevel,
    record: &mut DecisionRecord,
) {
    let diagnostics = response.diagnostics();
    let determining: Vec<String> = diagnostics.reason().map(|p| p.to_string()).collect();
    let errors: Vec<String> = diagnostics
        .errors()
        .map(|e| match e {
            cedar_policy::AuthorizationError::PolicyEvaluationError(e) => {
                format!("{}: {e}", e.policy_id())
            }
        })
        .collect();
    interpret_outcome(
        bundle,
        response.decision() == cedar_policy::Decision::Allow,
        determining,
        errors,
        default_level,
        record,
    );
}

/// [`interpret`] on a response's parts, however they were computed.
fn interpret_outcome(
    bundle: &CompiledBundle,
    allow: bool,
    mut determining: Vec<String>,
    mut errors: Vec<String>,
    default_level: AuthorityLevel,
    record: &mut DecisionRecord,
) {
    // Cedar returns these from hash sets; sort them so every replica
    // records the same bytes.
    determining.sort();
    errors.sort();
    record.determining = determining;
    record.errors.extend(errors);
    record.required_level = None;
    record.decision = if !record.errors.is_empty() {
        Decision::Deny
    } else if allow {
        Decision::Permit
    } else if record.determining.is_empty() {
        Decision::Deny
    } else {
        let marks: Vec<_> = record
            .determining
            .iter()
            .map(|id| bundle.escalation(id))
            .collect();
        if marks.iter().all(|m| m.is_some_and(|m| m.escalatable)) {
            record.required_level = Some(
                marks
                    .iter()
                    .filter_map(|m| m.and_then(|m| m.level))
                    .max()
                    .unwrap_or(default_level),
            );
            Decision::Escalate
        } else {
            Decision::Deny
        }
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Built directly or parsed by Cedar, a context must be the same.
    #[test]
    fn plain_contexts_equal_what_cedar_parses() {
        let contexts = [
            json!({}),
            json!({"mission": {"__entity": {"type": "Aura::Mission", "id": "m-1"}},
                   "granted_level": 0,
                   "arguments": {"amount": -42, "memo": "naïve \"quoted\"", "ok": true,
                                 "tags": ["a", "b", "a"], "nested": {"deep": [1, [2, 3]]},
                                 "empty": {}, "none": []}}),
            json!({"big": i64::MAX, "small": i64::MIN}),
        ];
        for c in contexts {
            assert!(is_plain(&c), "{c}");
            let pairs = plain_context(&c).expect("plain");
            let built = Context::from_pairs(pairs).unwrap();
            let parsed = Context::from_json_value(c.clone(), None).unwrap();
            assert_eq!(built.to_string(), parsed.to_string(), "{c}");
        }
    }

    /// What Cedar reads its own way, or refuses, is left to Cedar.
    #[test]
    fn other_contexts_go_to_cedars_parser() {
        for c in [
            json!([1]),
            json!({"x": null}),
            json!({"x": 1.5}),
            json!({"x": u64::MAX}),
            json!({"x": {"__extn": {"fn": "decimal", "arg": "1.0"}}}),
            json!({"x": {"__expr": "1"}}),
            json!({"x": {"__entity": {"type": "A", "id": "b"}, "y": 1}}),
            json!({"x": {"__entity": {"type": "A", "id": "b", "z": 1}}}),
            json!({"x": {"__entity": {"type": "not a type", "id": "b"}}}),
        ] {
            assert!(plain_context(&c).is_none(), "{c}");
            assert!(!is_plain(&c), "{c}");
        }
    }
}
