//! The Cedar entities and requests the engine builds from its own state
//! for a decision about one mission step.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entities, Entity, EntityUid, RestrictedExpression};
use serde_json::{Value, json};

use crate::ids::{AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, ToolName, UserId};
use crate::mission::{AuthorityLevel, DataClassification};
use crate::policy::decision::{EntityRef, PolicyRequest, PreparedEntities};
use crate::policy::routing::ToolSpec;

pub fn classification_id(c: DataClassification) -> &'static str {
    match c {
        DataClassification::Public => "public",
        DataClassification::Internal => "internal",
        DataClassification::Confidential => "confidential",
        DataClassification::Restricted => "restricted",
    }
}

pub fn level_rank(l: AuthorityLevel) -> i64 {
    match l {
        AuthorityLevel::L1 => 1,
        AuthorityLevel::L2 => 2,
        AuthorityLevel::L3 => 3,
        AuthorityLevel::L4 => 4,
    }
}

/// An attribute value of an entity the engine builds.
enum Attr<'a> {
    Long(i64),
    Str(&'a str),
    Entity(&'static str, &'a str),
}

/// One entity the engine builds for a decision, written once and rendered
/// two ways: as Cedar's JSON entity format (what is digested, recorded and
/// replayed in release analysis) and as Cedar entities built directly
/// (what is evaluated; parsing the JSON took a quarter of the CPU of a
/// full mission run, most of it in serde errors from Cedar's attempts at
/// each value's escape forms).
struct EntitySpec<'a> {
    kind: &'static str,
    id: &'a str,
    attrs: Vec<(&'static str, Attr<'a>)>,
    parents: Vec<(&'static str, &'a str)>,
}

impl EntitySpec<'_> {
    fn to_json(&self) -> Value {
        let attrs: serde_json::Map<String, Value> = self
            .attrs
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Attr::Long(n) => json!(n),
                    Attr::Str(s) => json!(s),
                    Attr::Entity(kind, id) => entity_ref(kind, id),
                };
                ((*name).to_owned(), value)
            })
            .collect();
        let parents: Vec<Value> = self.parents.iter().map(|(k, id)| euid(k, id)).collect();
        json!({"uid": euid(self.kind, self.id), "attrs": attrs, "parents": parents})
    }

    fn to_cedar(&self) -> Result<Entity, String> {
        let attrs: HashMap<String, RestrictedExpression> = self
            .attrs
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Attr::Long(n) => RestrictedExpression::new_long(*n),
                    Attr::Str(s) => RestrictedExpression::new_string((*s).to_owned()),
                    Attr::Entity(kind, id) => {
                        RestrictedExpression::new_entity_uid(EntityRef::new(kind, *id).to_cedar()?)
                    }
                };
                Ok(((*name).to_owned(), value))
            })
            .collect::<Result<_, String>>()?;
        let parents: HashSet<EntityUid> = self
            .parents
            .iter()
            .map(|(k, id)| EntityRef::new(k, *id).to_cedar())
            .collect::<Result<_, _>>()?;
        Entity::new(
            EntityRef::new(self.kind, self.id).to_cedar()?,
            attrs,
            parents,
        )
        .map_err(|e| e.to_string())
    }
}

const CLASSIFICATIONS: [DataClassification; 4] = [
    DataClassification::Public,
    DataClassification::Internal,
    DataClassification::Confidential,
    DataClassification::Restricted,
];

/// The entities every decision carries whatever the step: the four data
/// classifications and the four approval levels, with their ranks. Built
/// once per process: rendering and building them was most of the entity
/// work of a decision.
struct Constants {
    json: Vec<Value>,
    cedar: Vec<Entity>,
}

fn constant_specs() -> Vec<EntitySpec<'static>> {
    let classifications = CLASSIFICATIONS
        .into_iter()
        .zip(1..)
        .map(|(c, rank)| EntitySpec {
            kind: "Aura::Classification",
            id: classification_id(c),
            attrs: vec![("rank", Attr::Long(rank))],
            parents: vec![],
        });
    let levels = AuthorityLevel::ALL.into_iter().map(|l| EntitySpec {
        kind: "Aura::ApprovalLevel",
        id: l.as_str(),
        attrs: vec![("rank", Attr::Long(level_rank(l)))],
        parents: vec![],
    });
    classifications.chain(levels).collect()
}

fn constants() -> &'static Constants {
    static CONSTANTS: std::sync::OnceLock<Constants> = std::sync::OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let specs = constant_specs();
        Constants {
            json: specs.iter().map(EntitySpec::to_json).collect(),
            cedar: specs
                .iter()
                .map(|s| s.to_cedar().expect("the constant entities are well formed"))
                .collect(),
        }
    })
}

fn euid(kind: &str, id: &str) -> Value {
    json!({"type": kind, "id": id})
}

fn entity_ref(kind: &str, id: &str) -> Value {
    json!({"__entity": euid(kind, id)})
}

/// Everything a decision about one tool step looks at.
#[derive(Clone, Copy, Debug)]
pub struct StepSubject<'a> {
    pub tenant: &'a TenantId,
    pub namespace: &'a NamespaceId,
    pub agent: &'a AgentId,
    pub org_unit: &'a OrgUnitId,
    pub owner: Option<&'a UserId>,
    pub mission: &'a MissionId,
    pub classification: DataClassification,
    pub authority: AuthorityLevel,
    pub requester: &'a str,
    pub tool: &'a ToolName,
    pub tool_spec: &'a ToolSpec,
}

impl StepSubject<'_> {
    fn specs(&self) -> Vec<EntitySpec<'_>> {
        let (tenant, namespace) = (self.tenant.as_str(), self.namespace.as_str());
        let org_unit = self.org_unit.as_str();
        let mut agent_attrs = Vec::new();
        if let Some(owner) = self.owner {
            agent_attrs.push(("owner", Attr::Entity("Aura::User", owner.as_str())));
        }
        vec![
            EntitySpec {
                kind: "Aura::Tenant",
                id: tenant,
                attrs: vec![],
                parents: vec![],
            },
            EntitySpec {
                kind: "Aura::Namespace",
                id: namespace,
                attrs: vec![],
                parents: vec![("Aura::Tenant", tenant)],
            },
            EntitySpec {
                kind: "Aura::OrgUnit",
                id: org_unit,
                attrs: vec![],
                parents: vec![],
            },
            EntitySpec {
                kind: "Aura::Agent",
                id: self.agent.as_str(),
                attrs: agent_attrs,
                parents: vec![("Aura::OrgUnit", org_unit)],
            },
            EntitySpec {
                kind: "Aura::Tool",
                id: self.tool.as_str(),
                attrs: vec![
                    ("risk", Attr::Long(level_rank(self.tool_spec.risk))),
                    (
                        "classification",
                        Attr::Entity(
                            "Aura::Classification",
                            classification_id(self.tool_spec.classification),
                        ),
                    ),
                    ("target", Attr::Str(&self.tool_spec.target)),
                ],
                parents: vec![],
            },
            EntitySpec {
                kind: "Aura::Mission",
                id: self.mission.as_str(),
                attrs: vec![
                    (
                        "classification",
                        Attr::Entity(
                            "Aura::Classification",
                            classification_id(self.classification),
                        ),
                    ),
                    (
                        "authority",
                        Attr::Entity("Aura::ApprovalLevel", self.authority.as_str()),
                    ),
                    ("requester", Attr::Str(self.requester)),
                ],
                parents: vec![("Aura::Namespace", namespace)],
            },
        ]
    }

    /// The entities in Cedar's JSON entity format, and prepared for
    /// evaluation from the same description without parsing that JSON.
    /// The step's own entities come first, then the [`constants`].
    pub fn prepared(&self) -> Result<(Value, PreparedEntities), String> {
        let specs = self.specs();
        let constants = constants();
        let json = Value::Array(
            specs
                .iter()
                .map(EntitySpec::to_json)
                .chain(constants.json.iter().cloned())
                .collect(),
        );
        let entities = specs
            .iter()
            .map(EntitySpec::to_cedar)
            .chain(constants.cedar.iter().cloned().map(Ok))
            .collect::<Result<Vec<_>, _>>()?;
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        let prepared = PreparedEntities::from_parts(&json, entities)?;
        Ok((json, prepared))
    }

    /// A `plan_step` or `call_tool` request for this step.
    pub fn request(
        &self,
        action: &str,
        arguments: &Value,
        granted: Option<AuthorityLevel>,
    ) -> PolicyRequest {
        PolicyRequest {
            principal: EntityRef::new("Aura::Agent", self.agent.as_str()),
            action: EntityRef::new("Aura::Action", action),
            resource: EntityRef::new("Aura::Tool", self.tool.as_str()),
            context: json!({
                "mission": entity_ref("Aura::Mission", self.mission.as_str()),
                "arguments": arguments,
                "granted_level": granted.map_or(0, level_rank),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(owner: Option<&UserId>) {
        let (tenant, namespace) = ("acme".parse().unwrap(), "prod".parse().unwrap());
        let (agent, org_unit) = ("bot".parse().unwrap(), "finance".parse().unwrap());
        let (mission, tool) = ("m-1".parse().unwrap(), "erp.post".parse().unwrap());
        let spec = ToolSpec {
            risk: AuthorityLevel::L3,
            classification: DataClassification::Confidential,
            target: "eu-west-1".into(),
            invocation: None,
            timeouts: None,
        };
        let subject = StepSubject {
            tenant: &tenant,
            namespace: &namespace,
            agent: &agent,
            org_unit: &org_unit,
            owner,
            mission: &mission,
            classification: DataClassification::Internal,
            authority: AuthorityLevel::L2,
            requester: "user:alice",
            tool: &tool,
            tool_spec: &spec,
        };
        let (json, built) = subject.prepared().unwrap();
        let parsed = PreparedEntities::from_json(&json, None).unwrap();
        assert_eq!(built.cedar(), parsed.cedar());
        assert_eq!(built.digest(), parsed.digest());
        assert_eq!(json.as_array().map(Vec::len), Some(14));
    }

    /// The entities evaluated are exactly the ones recorded: building them
    /// directly must give what parsing the recorded JSON gives.
    #[test]
    fn built_entities_equal_their_parsed_json() {
        check(None);
        check(Some(&"alice".parse().unwrap()));
    }
}
