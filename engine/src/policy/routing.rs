//! The deployment boundary: where data of each classification may go.
//! Where each tool is deployed is the tool's own ([`crate::tool`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::mission::DataClassification;

/// Where a tool or reasoner runs: `on-prem`, `cloud`, or a region name
/// such as `region:eu-west-1`.
pub type DeploymentTarget = String;

pub fn validate_target(t: &str) -> Result<(), String> {
    let ok = t == "on-prem"
        || t == "cloud"
        || t.strip_prefix("region:").is_some_and(|r| {
            !r.is_empty()
                && r.len() <= 64
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{t}` is not a deployment target: use on-prem, cloud or region:<name>"
        ))
    }
}

/// Per namespace: which targets data of each classification may reach. A
/// classification with no entry may go nowhere.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoutingTable(pub BTreeMap<DataClassification, BTreeSet<DeploymentTarget>>);

impl RoutingTable {
    pub fn allowed(&self, c: DataClassification) -> BTreeSet<DeploymentTarget> {
        self.0.get(&c).cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), String> {
        for t in self.0.values().flatten() {
            validate_target(t)?;
        }
        Ok(())
    }
}

const MAX_URL: usize = 2048;
pub(crate) fn validate_url(field: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty() && url.len() <= MAX_URL && !url.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{field} `{url}` is not an http:// or https:// URL of at most {MAX_URL} characters"
        )),
    }
}
