//! Reasoners: what turns a mission into a plan (steps of tool + arguments).
//!
//! Only the scripted reasoner is built: it derives the plan from the
//! mission's definition without any model, deterministically, and says so
//! in the record (`provider: "scripted"`). Model-backed providers
//! (Anthropic Messages, OpenAI-compatible chat) are not built yet.

use aura_engine::mission::{Mission, PlanStep};
use serde::Serialize;
use serde_json::{Value, json};

/// The providers a namespace can plan with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoner {
    /// One step per tool of the definition, in the definition's order,
    /// each called with the mission's inputs as its arguments.
    Scripted,
}

/// What a reasoner was asked and what it answered, as recorded in the
/// mission's working state before the plan is submitted.
#[derive(Debug, Clone, Serialize)]
pub struct PlanExchange {
    pub provider: &'static str,
    pub input: Value,
    pub output: Vec<PlanStep>,
}

/// The state-data key a planning exchange is recorded under.
pub const PLAN_RECORD_KEY: &str = "reasoner.plan";

#[derive(Debug, thiserror::Error)]
pub enum ReasonerError {
    #[error("the mission's inputs must be a JSON object to become tool arguments")]
    InputsNotObject,
}

impl Reasoner {
    pub fn name(self) -> &'static str {
        match self {
            Reasoner::Scripted => "scripted",
        }
    }

    pub async fn plan(self, mission: &Mission) -> Result<PlanExchange, ReasonerError> {
        let definition = mission.definition();
        let inputs = &mission.context().get().inputs;
        let input = json!({
            "objective": definition.objective,
            "tools": definition.tools,
            "inputs": inputs,
        });
        let output = match self {
            Reasoner::Scripted => {
                if !inputs.is_object() {
                    return Err(ReasonerError::InputsNotObject);
                }
                definition
                    .tools
                    .iter()
                    .map(|tool| PlanStep {
                        tool: tool.clone(),
                        arguments: inputs.clone(),
                        retry: None,
                    })
                    .collect()
            }
        };
        Ok(PlanExchange {
            provider: self.name(),
            input,
            output,
        })
    }
}
