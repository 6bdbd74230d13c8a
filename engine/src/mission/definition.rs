//! MissionDefinition: the four-field contract every mission starts from.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::ToolName;
use crate::mission::boundary::AuthorityLevel;
use crate::time::Millis;

pub const MAX_OBJECTIVE_CHARS: usize = 4_000;
pub const MAX_TOOLS: usize = 64;
pub const MIN_TIMEOUT: Millis = Millis::from_secs(1);
pub const MAX_TIMEOUT: Millis = Millis::from_secs(30 * 24 * 3600);

/// What the mission is for, what it may use, who must approve it and when
/// it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MissionDefinition {
    /// What: a plain-language statement of the task.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 4000, pattern = r"\S")
    )]
    pub objective: String,
    /// How: the tools the mission may use, by registered name, each once.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 64))]
    pub tools: Vec<ToolName>,
    /// Who approves: the authority level the mission needs.
    pub authority: AuthorityLevel,
    /// When it expires, counted from creation, in milliseconds (1 s to 30
    /// days).
    #[cfg_attr(feature = "openapi", schema(value_type = u64, minimum = 1000, maximum = 2_592_000_000_u64))]
    pub timeout: Millis,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Serialize, Deserialize)]
pub enum DefinitionError {
    #[error("objective is empty; say what the mission is for")]
    EmptyObjective,
    #[error("objective has {chars} characters; the limit is {MAX_OBJECTIVE_CHARS}")]
    ObjectiveTooLong { chars: usize },
    #[error("a mission needs at least one tool")]
    NoTools,
    #[error("a mission may name at most {MAX_TOOLS} tools, this one names {count}")]
    TooManyTools { count: usize },
    #[error("tool `{0}` is listed twice")]
    DuplicateTool(ToolName),
    #[error("timeout of {ms} ms is outside the allowed 1 s to 30 days")]
    TimeoutOutOfRange { ms: u64 },
}

impl MissionDefinition {
    pub fn validate(&self) -> Result<(), DefinitionError> {
        if self.objective.trim().is_empty() {
            return Err(DefinitionError::EmptyObjective);
        }
        let chars = self.objective.chars().count();
        if chars > MAX_OBJECTIVE_CHARS {
            return Err(DefinitionError::ObjectiveTooLong { chars });
        }
        if self.tools.is_empty() {
            return Err(DefinitionError::NoTools);
        }
        if self.tools.len() > MAX_TOOLS {
            return Err(DefinitionError::TooManyTools {
                count: self.tools.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for t in &self.tools {
            if !seen.insert(t) {
                return Err(DefinitionError::DuplicateTool(t.clone()));
            }
        }
        if self.timeout < MIN_TIMEOUT || self.timeout > MAX_TIMEOUT {
            return Err(DefinitionError::TimeoutOutOfRange { ms: self.timeout.0 });
        }
        Ok(())
    }

    pub fn tool_set(&self) -> BTreeSet<ToolName> {
        self.tools.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> MissionDefinition {
        MissionDefinition {
            objective: "Reconcile invoices".into(),
            tools: vec![ToolName::new("erp.read").unwrap()],
            authority: AuthorityLevel::L2,
            timeout: Millis::from_secs(600),
        }
    }

    #[test]
    fn validation_explains_each_problem() {
        assert_eq!(def().validate(), Ok(()));
        let mut d = def();
        d.objective = "  ".into();
        assert_eq!(d.validate(), Err(DefinitionError::EmptyObjective));
        d.objective = "x".repeat(4001);
        assert_eq!(
            d.validate(),
            Err(DefinitionError::ObjectiveTooLong { chars: 4001 })
        );
        let mut d = def();
        d.tools.clear();
        assert_eq!(d.validate(), Err(DefinitionError::NoTools));
        d.tools = vec![ToolName::new("a").unwrap(), ToolName::new("a").unwrap()];
        assert!(matches!(
            d.validate(),
            Err(DefinitionError::DuplicateTool(_))
        ));
        d.tools = (0..65)
            .map(|i| ToolName::new(format!("t{i}")).unwrap())
            .collect();
        assert_eq!(
            d.validate(),
            Err(DefinitionError::TooManyTools { count: 65 })
        );
        let mut d = def();
        d.timeout = Millis(999);
        assert_eq!(
            d.validate(),
            Err(DefinitionError::TimeoutOutOfRange { ms: 999 })
        );
        assert!(
            serde_json::from_str::<MissionDefinition>(
                r#"{"objective":"x","tools":["a"],"authority":"L1","timeout":1000,"extra":1}"#
            )
            .is_err()
        );
    }
}
