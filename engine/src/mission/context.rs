//! MissionContext: the mission's input environment, frozen at launch. The
//! agent reads it; nothing can change it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{self, Domain};
use crate::mission::boundary::{BOUNDARY_DOMAIN, DataClassification, MissionBoundary};
use crate::mission::frozen::Freezable;

pub const CONTEXT_DOMAIN: Domain = Domain::new("aura.mission-context/1");
pub const MAX_CONTEXT_BYTES: usize = 256 * 1024;
pub const MAX_LABELS: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MissionContext {
    /// The mission's inputs: a JSON object (at most 256 KiB encoded).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub inputs: Value,
    /// The classification of the data the mission handles.
    pub classification: DataClassification,
    /// Free-form labels for search and reporting.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Serialize, Deserialize)]
pub enum ContextError {
    #[error("mission inputs must be a JSON object")]
    InputsNotObject,
    #[error("mission inputs take {bytes} bytes; the limit is {MAX_CONTEXT_BYTES}")]
    TooLarge { bytes: usize },
    #[error("mission inputs cannot be encoded: {0}")]
    NotEncodable(String),
    #[error(
        "at most {MAX_LABELS} labels, with keys of 1 to 64 and values of at most 256 characters"
    )]
    BadLabels,
}

impl MissionContext {
    pub fn validate(&self) -> Result<(), ContextError> {
        if !self.inputs.is_object() {
            return Err(ContextError::InputsNotObject);
        }
        let bytes = canonical::to_bytes(&self.inputs)
            .map_err(|e| ContextError::NotEncodable(e.to_string()))?
            .len();
        if bytes > MAX_CONTEXT_BYTES {
            return Err(ContextError::TooLarge { bytes });
        }
        let labels_ok = self.labels.len() <= MAX_LABELS
            && self
                .labels
                .iter()
                .all(|(k, v)| (1..=64).contains(&k.len()) && v.len() <= 256);
        if !labels_ok {
            return Err(ContextError::BadLabels);
        }
        Ok(())
    }
}

impl Freezable for MissionContext {
    const DOMAIN: Domain = CONTEXT_DOMAIN;
}

impl Freezable for MissionBoundary {
    const DOMAIN: Domain = BOUNDARY_DOMAIN;
}
