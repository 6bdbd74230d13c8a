//! The Cedar schema of AURA's entities and actions. A bundle may bring its
//! own schema (for instance to declare more tool-argument attributes), but
//! it must keep these entity types and actions, because the engine builds
//! its requests in this shape.

pub const BASE_SCHEMA: &str = r#"
namespace Aura {
  entity Tenant;
  entity Namespace in [Tenant];
  entity OrgUnit in [OrgUnit];
  entity Group in [Group];
  // A human from the tenant's directory; `level` is the approval level
  // (1 to 4) the authority graph grants them.
  entity User in [Group, OrgUnit] = {
    "level": Long,
  };
  entity Agent in [OrgUnit] = {
    "owner"?: User,
  };
  // public = 1, internal = 2, confidential = 3, restricted = 4
  entity Classification = {
    "rank": Long,
  };
  // L1 = 1 … L4 = 4
  entity ApprovalLevel = {
    "rank": Long,
  };
  entity Tool = {
    "risk": Long,
    "classification": Classification,
    "target": String,
  };
  entity Mission in [Namespace] = {
    "classification": Classification,
    "authority": ApprovalLevel,
    "requester": String,
  };

  // Tool arguments policies may look at. Bundles that need more declare a
  // schema of their own with more optional attributes.
  type Arguments = {
    "amount"?: Long,
    "currency"?: String,
    "recipient"?: String,
    "count"?: Long,
    "path"?: String,
  };

  // The agent proposes a plan step that will call a tool.
  action plan_step appliesTo {
    principal: [Agent],
    resource: [Tool],
    context: {
      "mission": Mission,
      "arguments": Arguments,
      "granted_level": Long,
    },
  };
  // The agent calls a tool during execution.
  action call_tool appliesTo {
    principal: [Agent],
    resource: [Tool],
    context: {
      "mission": Mission,
      "arguments": Arguments,
      "granted_level": Long,
    },
  };
  // A human approves a mission (evaluated by `aura policy test` and
  // available to bundles; approvals themselves are governed by the
  // authority graph and approval rules).
  action approve appliesTo {
    principal: [User],
    resource: [Mission],
    context: {
      "level": Long,
    },
  };
}
"#;
