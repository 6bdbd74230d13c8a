//! Where one call of a tool goes: the first of its deployments that the
//! call's data may reach under the namespace's routing table.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ToolSpec;
use crate::mission::DataClassification;
use crate::policy::routing::DeploymentTarget;

/// Where one call goes: the deployment its data may reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub target: DeploymentTarget,
    /// Absent for a tool that is governed but not called through AURA.
    pub endpoint: Option<String>,
    pub compensation_endpoint: Option<String>,
}

impl ToolSpec {
    /// Every deployment of the tool, its own first.
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        let own = Route {
            target: self.target.clone(),
            endpoint: self.invocation.as_ref().map(|i| i.endpoint.clone()),
            compensation_endpoint: self
                .invocation
                .as_ref()
                .and_then(|i| i.compensation_endpoint.clone()),
        };
        let others = self
            .invocation
            .iter()
            .flat_map(|i| i.placements.iter())
            .map(|p| Route {
                target: p.target.clone(),
                endpoint: Some(p.endpoint.clone()),
                compensation_endpoint: p.compensation_endpoint.clone(),
            });
        std::iter::once(own).chain(others)
    }

    /// The first deployment that data of the given classification may
    /// reach, or why there is none.
    pub fn route(
        &self,
        data: DataClassification,
        allowed_targets: &BTreeSet<DeploymentTarget>,
    ) -> Result<Route, String> {
        if self.classification < data {
            return Err(format!(
                "{data:?} data may not go to a tool cleared only for {:?} data",
                self.classification
            ));
        }
        self.routes()
            .find(|r| allowed_targets.contains(&r.target))
            .ok_or_else(|| {
                let deployed: Vec<String> = self
                    .routes()
                    .map(|r| format!("target `{}`", r.target))
                    .collect();
                format!(
                    "{data:?} data may not go to {} (allowed: {})",
                    deployed.join(" or "),
                    if allowed_targets.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed_targets
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )
            })
    }
}

/// Why a call would cross the deployment boundary: no deployment of the
/// tool may receive the data.
pub fn boundary_violation(
    data: DataClassification,
    allowed_targets: &BTreeSet<DeploymentTarget>,
    tool: &ToolSpec,
) -> Option<String> {
    tool.route(data, allowed_targets).err()
}
