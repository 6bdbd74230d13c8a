//! The Cedar entities and requests the engine builds from its own state
//! for a decision about one mission step.

use serde_json::{Value, json};

use crate::ids::{AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, ToolName, UserId};
use crate::mission::{AuthorityLevel, DataClassification};
use crate::policy::decision::{EntityRef, PolicyRequest};
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

fn euid(kind: &str, id: &str) -> Value {
    json!({"type": kind, "id": id})
}

fn entity_ref(kind: &str, id: &str) -> Value {
    json!({"__entity": {"type": kind, "id": id}})
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
    /// The entities, in Cedar's JSON entity format.
    pub fn entities(&self) -> Value {
        let mut agent_attrs = serde_json::Map::new();
        if let Some(owner) = self.owner {
            agent_attrs.insert("owner".into(), entity_ref("Aura::User", owner.as_str()));
        }
        let mut list = vec![
            json!({"uid": euid("Aura::Tenant", self.tenant.as_str()), "attrs": {}, "parents": []}),
            json!({"uid": euid("Aura::Namespace", self.namespace.as_str()), "attrs": {},
                   "parents": [euid("Aura::Tenant", self.tenant.as_str())]}),
            json!({"uid": euid("Aura::OrgUnit", self.org_unit.as_str()), "attrs": {}, "parents": []}),
            json!({"uid": euid("Aura::Agent", self.agent.as_str()), "attrs": agent_attrs,
                   "parents": [euid("Aura::OrgUnit", self.org_unit.as_str())]}),
            json!({"uid": euid("Aura::Tool", self.tool.as_str()), "parents": [], "attrs": {
                "risk": level_rank(self.tool_spec.risk),
                "classification": entity_ref("Aura::Classification", classification_id(self.tool_spec.classification)),
                "target": self.tool_spec.target,
            }}),
            json!({"uid": euid("Aura::Mission", self.mission.as_str()),
                   "parents": [euid("Aura::Namespace", self.namespace.as_str())], "attrs": {
                "classification": entity_ref("Aura::Classification", classification_id(self.classification)),
                "authority": entity_ref("Aura::ApprovalLevel", &self.authority.to_string()),
                "requester": self.requester,
            }}),
        ];
        for (i, c) in [
            DataClassification::Public,
            DataClassification::Internal,
            DataClassification::Confidential,
            DataClassification::Restricted,
        ]
        .into_iter()
        .enumerate()
        {
            list.push(
                json!({"uid": euid("Aura::Classification", classification_id(c)),
                             "attrs": {"rank": i as i64 + 1}, "parents": []}),
            );
        }
        for l in [
            AuthorityLevel::L1,
            AuthorityLevel::L2,
            AuthorityLevel::L3,
            AuthorityLevel::L4,
        ] {
            list.push(json!({"uid": euid("Aura::ApprovalLevel", &l.to_string()),
                             "attrs": {"rank": level_rank(l)}, "parents": []}));
        }
        Value::Array(list)
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
