//! Policy bundles: Cedar policies plus the schema they are validated
//! against, compiled once and addressed by the digest of their source.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cedar_policy::{
    ActionConstraint, Effect, Entities, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::mission::AuthorityLevel;
use crate::policy::direct::{self, DirectEntities, DirectPolicy, DirectRequest, DirectResponse};
use crate::policy::schema::BASE_SCHEMA;

pub const BUNDLE_DOMAIN: Domain = Domain::new("aura.policy-bundle/1");
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;

/// A bundle as uploaded: source text. Its version is the digest of this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSource {
    /// Cedar policies. A policy is named by its `@id("…")` annotation, or
    /// `policyN` by position.
    pub policies: String,
    /// Cedar schema text; `None` means AURA's base schema.
    pub schema: Option<String>,
}

impl BundleSource {
    pub fn version(&self) -> Digest {
        canonical::digest(BUNDLE_DOMAIN, self).expect("strings always encode")
    }

    pub fn schema_text(&self) -> &str {
        self.schema.as_deref().unwrap_or(BASE_SCHEMA)
    }
}

/// One problem with a bundle, located for the author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}{}:{}:{}: {message}", .policy.as_ref().map(|p| format!("policy `{p}` at ")).unwrap_or_default(), .file, .line, .column)]
pub struct BundleProblem {
    /// `policies` or `schema`.
    pub file: String,
    pub policy: Option<String>,
    /// 1-based; 0 when the problem has no location.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Why a bundle was refused: every problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("policy bundle is invalid:\n{}", .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct BundleError {
    pub problems: Vec<BundleProblem>,
}

/// What a forbid policy's annotations say about escalation. Cedar gives
/// annotations no meaning; this layer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// `@escalate` is present.
    pub escalatable: bool,
    /// `@level("1".."4")`, if given.
    pub level: Option<AuthorityLevel>,
}

/// A validated, ready-to-evaluate bundle.
#[derive(Clone, Debug)]
pub struct CompiledBundle {
    version: Digest,
    policies: PolicySet,
    schema: Schema,
    forbids: BTreeMap<String, Escalation>,
    policy_ids: Vec<String>,
    slicer: Arc<PolicySlicer>,
}

/// Picks, for a request, the policies whose principal and action scopes can
/// match it. A policy whose scope does not match can neither be satisfied
/// nor raise an error (Cedar checks the scope before the conditions), so
/// evaluating only the slice gives exactly the same response, while a large
/// bundle costs only what applies to the caller.
#[derive(Debug)]
pub struct PolicySlicer {
    policies: Vec<Policy>,
    /// The scope of each policy, read once: Cedar's accessors build a new
    /// constraint, entity ids cloned, at every call.
    scopes: Vec<Scope>,
    /// Policies with no principal entity in their scope (any, or `is T`).
    unscoped: Vec<usize>,
    /// Policies scoped `principal == e`.
    by_eq: FastMap<EntityUid, Vec<usize>>,
    /// Policies scoped `principal in e` (or `is T in e`).
    by_in: FastMap<EntityUid, Vec<usize>>,
    /// Each policy in the direct subset, compiled; see [`direct`].
    direct: Vec<Option<DirectPolicy>>,
    cache: Mutex<FastMap<PolicyBits, Arc<PolicySet>>>,
}

/// Lookups only: keys come from bundles and the slice cache is bounded, so
/// a keyed hash buys nothing against flooding, and SipHash was a tenth of
/// a decision's time.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Where the slicer reads an entity's ancestors: Cedar's entities, or the
/// direct evaluator's copy of them.
pub(crate) trait Hierarchy {
    /// `None` if the entity does not exist.
    fn ancestors_of(&self, e: &EntityUid) -> Option<impl Iterator<Item = &EntityUid>>;
}

impl Hierarchy for Entities {
    fn ancestors_of(&self, e: &EntityUid) -> Option<impl Iterator<Item = &EntityUid>> {
        self.ancestors(e)
    }
}

const SLICE_CACHE: usize = 4096;

/// What of a policy's scope the slicer checks besides the principal entity.
#[derive(Debug)]
struct Scope {
    /// `principal is T` (alone or with `in`).
    principal_type: Option<EntityTypeName>,
    action: ActionConstraint,
}

impl Scope {
    fn of(p: &Policy) -> Scope {
        Scope {
            principal_type: match p.principal_constraint() {
                PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => Some(t),
                _ => None,
            },
            action: p.action_constraint(),
        }
    }
}

/// A set of policy positions, one bit each: the slice's cache key, built
/// without sorting or deduplicating.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PolicyBits(Vec<u64>);

impl PolicyBits {
    fn new(len: usize) -> PolicyBits {
        PolicyBits(vec![0; len.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            let mut bits = *bits;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + b
                })
            })
        })
    }
}

impl PolicySlicer {
    pub(crate) fn new(set: &PolicySet) -> PolicySlicer {
        let policies: Vec<Policy> = set.policies().cloned().collect();
        let mut s = PolicySlicer {
            scopes: policies.iter().map(Scope::of).collect(),
            direct: policies.iter().map(DirectPolicy::compile).collect(),
            policies,
            unscoped: Vec::new(),
            by_eq: FastMap::default(),
            by_in: FastMap::default(),
            cache: Mutex::new(FastMap::default()),
        };
        for (i, p) in s.policies.iter().enumerate() {
            match p.principal_constraint() {
                PrincipalConstraint::Any | PrincipalConstraint::Is(_) => s.unscoped.push(i),
                PrincipalConstraint::Eq(e) => s.by_eq.entry(e).or_default().push(i),
                PrincipalConstraint::In(e) | PrincipalConstraint::IsIn(_, e) => {
                    s.by_in.entry(e).or_default().push(i)
                }
            }
        }
        s
    }

    /// The policies that can apply to `principal` doing `action`.
    pub fn slice(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        entities: &Entities,
    ) -> Arc<PolicySet> {
        self.set_of(self.picked(principal, action, entities))
    }

    /// Cedar's response on the slice, computed by the direct evaluator, or
    /// `None` where Cedar must evaluate it (see [`direct`]).
    pub(crate) fn decide_directly(
        &self,
        req: &DirectRequest<'_>,
        entities: &DirectEntities,
    ) -> Option<DirectResponse> {
        let picked = self.picked(req.principal, req.action, entities);
        direct::authorize(
            picked.iter().map(|i| self.direct[i].as_ref()),
            req,
            entities,
        )
    }

    fn picked(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        entities: &impl Hierarchy,
    ) -> PolicyBits {
        let mut picked = PolicyBits::new(self.policies.len());
        let mut pick = |found: Option<&Vec<usize>>| {
            for i in found.into_iter().flatten() {
                picked.insert(*i);
            }
        };
        pick(Some(&self.unscoped));
        pick(self.by_eq.get(principal));
        pick(self.by_in.get(principal));
        if let Some(ancestors) = entities.ancestors_of(principal) {
            for a in ancestors {
                pick(self.by_in.get(a));
            }
        }
        // Only `action in [...]` needs the action's groups; most bundles
        // name actions with `==`.
        let mut action_ancestors: Option<Vec<&EntityUid>> = None;
        for i in picked.clone().iter() {
            let scope = &self.scopes[i];
            let type_fits = scope
                .principal_type
                .as_ref()
                .is_none_or(|t| t == principal.type_name());
            let action_fits = match &scope.action {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(e) => e == action,
                ActionConstraint::In(list) => list.iter().any(|e| {
                    e == action
                        || action_ancestors
                            .get_or_insert_with(|| {
                                entities
                                    .ancestors_of(action)
                                    .map(|a| a.collect())
                                    .unwrap_or_default()
                            })
                            .contains(&e)
                }),
            };
            if !(type_fits && action_fits) {
                picked.remove(i);
            }
        }
        picked
    }

    fn set_of(&self, picked: PolicyBits) -> Arc<PolicySet> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = cache.get(&picked) {
            return Arc::clone(set);
        }
        let mut set = PolicySet::new();
        for i in picked.iter() {
            set.add(self.policies[i].clone())
                .expect("policies of a valid set stay valid");
        }
        let set = Arc::new(set);
        if cache.len() >= SLICE_CACHE {
            cache.clear();
        }
        cache.insert(picked, Arc::clone(&set));
        set
    }
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, column)
}

fn problems_of(
    diag: &dyn Diagnostic,
    file: &str,
    text: &str,
    policy: Option<String>,
) -> BundleProblem {
    let offset = diag
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let (line, column) = offset.map_or((0, 0), |o| line_col(text, o));
    let mut message = diag.to_string();
    if let Some(help) = diag.help() {
        message.push_str(&format!(" ({help})"));
    }
    BundleProblem {
        file: file.to_owned(),
        policy,
        line,
        column,
        message,
    }
}

/// Byte offsets where each top-level policy starts: after the previous
/// policy's `;`, skipping blanks and comments. Strings and comments may
/// contain `;`, so they are skipped while scanning.
fn policy_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    let mut at_start = true;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            c => {
                if at_start {
                    starts.push(i);
                    at_start = false;
                }
                if c == b'"' {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                } else if c == b';' {
                    at_start = true;
                }
            }
        }
        i += 1;
    }
    starts
}

fn parse_level(s: &str) -> Option<AuthorityLevel> {
    match s.trim_start_matches(['L', 'l']) {
        "1" => Some(AuthorityLevel::L1),
        "2" => Some(AuthorityLevel::L2),
        "3" => Some(AuthorityLevel::L3),
        "4" => Some(AuthorityLevel::L4),
        _ => None,
    }
}

impl CompiledBundle {
    /// Parses and strictly validates a bundle, reporting every problem with
    /// its policy id, line and column.
    pub fn compile(source: &BundleSource) -> Result<CompiledBundle, BundleError> {
        let fail = |problems| Err(BundleError { problems });
        let size = source.policies.len() + source.schema.as_ref().map_or(0, String::len);
        if size > MAX_BUNDLE_BYTES {
            return fail(vec![BundleProblem {
                file: "policies".into(),
                policy: None,
                line: 0,
                column: 0,
                message: format!("bundle is {size} bytes; the limit is {MAX_BUNDLE_BYTES}"),
            }]);
        }
        let schema_text = source.schema_text();
        let schema = match Schema::from_cedarschema_str(schema_text) {
            Ok((schema, _warnings)) => schema,
            Err(e) => return fail(vec![problems_of(&e, "schema", schema_text, None)]),
        };
        let text = &source.policies;
        let parsed = match PolicySet::from_str(text) {
            Ok(p) => p,
            Err(errs) => {
                return fail(
                    errs.iter()
                        .map(|e| problems_of(e, "policies", text, None))
                        .collect(),
                );
            }
        };
        if parsed.templates().next().is_some() {
            return fail(vec![BundleProblem {
                file: "policies".into(),
                policy: None,
                line: 0,
                column: 0,
                message: "policy templates are not supported in bundles".into(),
            }]);
        }

        // Rename policies by their @id annotation so that decision records
        // and test expectations use the author's names.
        let mut policies = PolicySet::new();
        let mut problems = Vec::new();
        let mut forbids = BTreeMap::new();
        // Cedar names policies `policy0`, `policy1`, … in source order.
        let mut ordered: Vec<_> = parsed
            .policies()
            .map(|p| {
                let n = AsRef::<str>::as_ref(p.id())
                    .strip_prefix("policy")
                    .and_then(|n| n.parse::<usize>().ok());
                (n.unwrap_or(usize::MAX), p)
            })
            .collect();
        ordered.sort_by_key(|(n, _)| *n);
        let starts = policy_starts(text);
        let mut policy_ids = Vec::new();
        for (n, p) in ordered {
            let located = |message: String| {
                let (line, column) = starts.get(n).map_or((0, 0), |o| line_col(text, *o));
                BundleProblem {
                    file: "policies".into(),
                    policy: Some(
                        p.annotation("id")
                            .unwrap_or(AsRef::<str>::as_ref(p.id()))
                            .to_owned(),
                    ),
                    line,
                    column,
                    message,
                }
            };
            let id = p
                .annotation("id")
                .map_or_else(|| p.id().clone(), PolicyId::new);
            let policy = p.new_id(id.clone());
            if p.effect() == Effect::Forbid {
                let escalatable = p.annotation("escalate").is_some();
                let level = match p.annotation("level") {
                    None => None,
                    Some(l) => match parse_level(l) {
                        Some(level) => Some(level),
                        None => {
                            problems.push(located(format!(
                                "@level(\"{l}\") is not an approval level; use \"1\" to \"4\""
                            )));
                            None
                        }
                    },
                };
                forbids.insert(id.to_string(), Escalation { escalatable, level });
            } else if p.annotation("escalate").is_some() || p.annotation("level").is_some() {
                problems.push(located(
                    "@escalate and @level only mean something on forbid policies".into(),
                ));
            }
            policy_ids.push(id.to_string());
            if let Err(e) = policies.add(policy) {
                problems.push(located(e.to_string()));
            }
        }
        if !problems.is_empty() {
            return fail(problems);
        }

        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        let mut problems: Vec<_> = validation
            .validation_errors()
            .map(|e| problems_of(e, "policies", text, Some(e.policy_id().to_string())))
            .collect();
        problems.sort_by_key(|p| (p.line, p.column));
        if !problems.is_empty() {
            return fail(problems);
        }
        Ok(CompiledBundle {
            version: source.version(),
            slicer: Arc::new(PolicySlicer::new(&policies)),
            policies,
            schema,
            forbids,
            policy_ids,
        })
    }

    pub fn version(&self) -> Digest {
        self.version
    }
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }
    pub fn slicer(&self) -> &PolicySlicer {
        &self.slicer
    }
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
    /// Policy ids in source order.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }
    /// Escalation marks of the forbid policies, by id.
    pub fn escalation(&self, policy: &str) -> Option<Escalation> {
        self.forbids.get(policy).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(policies: &str) -> BundleSource {
        BundleSource {
            policies: policies.into(),
            schema: None,
        }
    }

    #[test]
    fn policy_bits_list_what_was_inserted_and_not_removed() {
        let mut bits = PolicyBits::new(131);
        for i in [130, 0, 63, 64, 64] {
            bits.insert(i);
        }
        bits.remove(63);
        assert_eq!(bits.iter().collect::<Vec<_>>(), [0, 64, 130]);
    }

    /// `action in [group]` reaches actions whose parents include the group,
    /// which the slicer reads from the entities only when such a policy is
    /// in the running.
    #[test]
    fn slices_follow_action_groups() {
        let set: PolicySet = r#"
@id("managers") permit(principal, action in [Aura::Action::"manage"], resource);
@id("direct") permit(principal, action in [Aura::Action::"call_tool"], resource);
"#
        .parse()
        .unwrap();
        let slicer = PolicySlicer::new(&set);
        let entities = Entities::from_json_value(
            serde_json::json!([
                {"uid": {"type": "Aura::Action", "id": "manage"}, "attrs": {}, "parents": []},
                {"uid": {"type": "Aura::Action", "id": "approve"}, "attrs": {},
                 "parents": [{"type": "Aura::Action", "id": "manage"}]},
            ]),
            None,
        )
        .unwrap();
        let principal: EntityUid = r#"Aura::User::"u""#.parse().unwrap();
        let ids = |action: &str| {
            let action: EntityUid = format!(r#"Aura::Action::"{action}""#).parse().unwrap();
            let mut ids: Vec<String> = slicer
                .slice(&principal, &action, &entities)
                .policies()
                .map(|p| p.annotation("id").unwrap().to_string())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids("approve"), ["managers"]);
        assert_eq!(ids("manage"), ["managers"]);
        assert_eq!(ids("call_tool"), ["direct"]);
    }

    #[test]
    fn compiles_and_names_policies_by_id() {
        let b = CompiledBundle::compile(&src(r#"
@id("agents-read")
permit(principal, action == Aura::Action::"call_tool", resource)
when { resource.risk <= 1 };

@id("big-payments") @escalate @level("3")
forbid(principal, action == Aura::Action::"call_tool", resource)
when { context.arguments has amount && context.arguments.amount > 10000 };
"#))
        .unwrap();
        assert_eq!(b.policy_ids(), ["agents-read", "big-payments"]);
        assert_eq!(
            b.escalation("big-payments"),
            Some(Escalation {
                escalatable: true,
                level: Some(AuthorityLevel::L3)
            })
        );
        assert_eq!(b.escalation("agents-read"), None);
    }

    #[test]
    fn strict_validation_reports_policy_line_and_column() {
        let err = CompiledBundle::compile(&src(
            "@id(\"ok\")\npermit(principal, action, resource);\n\n@id(\"typo\")\npermit(principal, action == Aura::Action::\"call_tool\", resource)\nwhen { resource.risky > 1 };\n",
        ))
        .unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert_eq!(p.policy.as_deref(), Some("typo"));
        assert_eq!(p.line, 6, "{p}");
        assert!(p.column > 1, "{p}");
        assert!(p.message.contains("risky"), "{p}");
    }

    #[test]
    fn syntax_errors_are_located() {
        let err =
            CompiledBundle::compile(&src("permit(principal, action, resource)\nwhen { 1 + };"))
                .unwrap_err();
        assert_eq!(err.problems[0].line, 2, "{err}");
        let err = CompiledBundle::compile(&BundleSource {
            policies: String::new(),
            schema: Some("entity ;".into()),
        })
        .unwrap_err();
        assert_eq!(err.problems[0].file, "schema");
    }

    #[test]
    fn policy_starts_skip_strings_and_comments() {
        let text = "// a; comment\npermit(principal, action, resource) when { \"a;b\" == \"x\" };\n\n  forbid(principal, action, resource);";
        let starts = policy_starts(text);
        assert_eq!(starts.len(), 2);
        assert_eq!(line_col(text, starts[0]), (2, 1));
        assert_eq!(line_col(text, starts[1]), (4, 3));
    }

    #[test]
    fn bad_annotations_are_refused() {
        let err = CompiledBundle::compile(&src(
            "permit(principal, action, resource);\n@id(\"x\") @escalate @level(\"9\")\nforbid(principal, action, resource);",
        ))
        .unwrap_err();
        assert!(err.problems[0].message.contains("@level(\"9\")"), "{err}");
        assert_eq!(
            (err.problems[0].line, err.problems[0].policy.as_deref()),
            (2, Some("x"))
        );
        let err = CompiledBundle::compile(&src("@escalate\npermit(principal, action, resource);"))
            .unwrap_err();
        assert!(
            err.problems[0]
                .message
                .contains("only mean something on forbid"),
            "{err}"
        );
    }

    #[test]
    fn version_is_the_digest_of_the_source() {
        let a = src("permit(principal, action, resource);");
        let b = src("permit(principal, action, resource); ");
        assert_ne!(a.version(), b.version());
        assert_eq!(a.version(), a.clone().version());
    }
}
