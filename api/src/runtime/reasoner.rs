//! Reasoners: what turns a mission into a plan (steps of tool + arguments).
//!
//! - The **scripted** reasoner derives the plan from the mission's
//!   definition without any model, deterministically, and says so in the
//!   record (`provider: "scripted"`).
//! - A **model** reasoner asks a language model over HTTP, speaking either
//!   the Anthropic Messages API or OpenAI-compatible chat completions (which
//!   OpenAI, Ollama, vLLM and llama.cpp servers all serve). The mission's
//!   data goes to the provider only if the mission's frozen data boundary
//!   allows the provider's deployment target.
//!
//! Whatever was asked and answered is recorded in the mission's working
//! state before the plan is submitted, so policy decides a plan whose
//! origin is on the record, and a recovery never asks twice.

use std::fmt;

use aura_engine::ids::ToolName;
use aura_engine::mission::{CallFailure, CallResult, Mission, PlanStep};
use aura_engine::policy::reasoner::ReasonerConfig;
use aura_engine::policy::routing::DeploymentTarget;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::gateway::invoke::{JsonRequest, ToolClient};

/// State-data keys the reasoner's records live under.
const RECORD_PREFIX: &str = "reasoner.";
/// The state-data key a planning exchange is recorded under.
pub const PLAN_RECORD_KEY: &str = "reasoner.plan";
/// The state-data key failed attempts to plan are recorded under.
pub const ATTEMPTS_RECORD_KEY: &str = "reasoner.attempts";

/// Failed attempts to ask a model for a plan, as recorded in the mission's
/// working state: the next attempt waits for `not_before`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanAttempts {
    pub failed_attempts: u32,
    pub first_at: aura_engine::Timestamp,
    pub not_before: aura_engine::Timestamp,
    pub last_error: String,
}
/// The most of a model's answer the record keeps.
const MAX_RECORDED_ANSWER_CHARS: usize = 16 * 1024;

const SYSTEM_PROMPT: &str = "You plan the execution of a governed mission. \
You are given its objective, the tools it may use, its inputs and, when it \
has any, its working memory. Answer with \
one JSON object and nothing else: {\"steps\": [{\"tool\": \"<one of the tools>\", \
\"arguments\": {<the tool's arguments>}}]}. Use only the tools listed, in the \
order they should run.";

/// A namespace's reasoner, resolved on this node (its key opened from the
/// tenant's secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasoner {
    /// One step per tool of the definition, in the definition's order,
    /// each called with the mission's inputs as its arguments.
    Scripted,
    Model(ModelProvider),
}

/// Which wire format a model provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelApi {
    /// `POST {url}/v1/messages`, `x-api-key`, `anthropic-version`.
    Anthropic,
    /// `POST {url}/chat/completions`, `Authorization: Bearer`.
    OpenAiCompatible,
}

impl ModelApi {
    pub fn name(self) -> &'static str {
        match self {
            ModelApi::Anthropic => "anthropic",
            ModelApi::OpenAiCompatible => "openai-compatible",
        }
    }
}

/// A language model that plans over HTTP.
#[derive(Clone, PartialEq, Eq)]
pub struct ModelProvider {
    pub api: ModelApi,
    pub url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub target: DeploymentTarget,
    pub timeout_ms: u64,
}

impl fmt::Debug for ModelProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelProvider")
            .field("api", &self.api)
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("target", &self.target)
            .finish()
    }
}

impl Reasoner {
    /// The reasoner a namespace's configuration names, with its key,
    /// which `secret` gives by name (the tenant's own secrets).
    pub fn resolve(
        config: &ReasonerConfig,
        secret: impl Fn(&str) -> Result<String, ReasonerError>,
    ) -> Result<Reasoner, ReasonerError> {
        let (api, m) = match config {
            ReasonerConfig::Scripted {} => return Ok(Reasoner::Scripted),
            ReasonerConfig::Anthropic(m) => (ModelApi::Anthropic, m),
            ReasonerConfig::OpenaiCompatible(m) => (ModelApi::OpenAiCompatible, m),
        };
        Ok(Reasoner::Model(ModelProvider {
            api,
            url: m.url.clone(),
            model: m.model.clone(),
            api_key: m.api_key_secret.as_deref().map(secret).transpose()?,
            target: m.target.clone(),
            timeout_ms: m.timeout_ms,
        }))
    }
}

/// What a reasoner was asked and what it answered, as recorded in the
/// mission's working state before the plan is submitted.
#[derive(Debug, Clone, Serialize)]
pub struct PlanExchange {
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<DeploymentTarget>,
    /// What the reasoner was asked: the mission's objective, tools and
    /// inputs, or for a model the request body as sent (never its key).
    pub input: Value,
    /// A model's answer as it wrote it (at most 16 Ki characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    pub output: Vec<PlanStep>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReasonerError {
    #[error("the mission's inputs must be a JSON object to become tool arguments")]
    InputsNotObject,
    #[error(
        "the mission's {classification} data may not go to the reasoner at `{target}` (the mission's boundary allows: {allowed})"
    )]
    OutsideBoundary {
        classification: String,
        target: DeploymentTarget,
        allowed: String,
    },
    #[error("the reasoner's key: {0}")]
    Secret(crate::app::secrets::RevealError),
    #[error("the reasoner did not answer: {message}")]
    Unavailable {
        failure: CallFailure,
        message: String,
    },
    #[error("the reasoner's answer is not a usable plan: {0}")]
    BadAnswer(String),
}

/// One step as a model writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelStep {
    tool: ToolName,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct ModelPlan {
    steps: Vec<ModelStep>,
}

impl Reasoner {
    pub fn name(&self) -> &'static str {
        match self {
            Reasoner::Scripted => "scripted",
            Reasoner::Model(p) => p.api.name(),
        }
    }

    pub async fn plan(
        &self,
        mission: &Mission,
        http: &ToolClient,
    ) -> Result<PlanExchange, ReasonerError> {
        let definition = mission.definition();
        let inputs = &mission.context().get().inputs;
        // The mission's working memory (bounded by the engine's state-data
        // limits), without the reasoner's own records.
        let memory: serde_json::Map<String, Value> = mission
            .state_data()
            .entries()
            .iter()
            .filter(|(k, _)| !k.starts_with(RECORD_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut input = json!({
            "objective": definition.objective,
            "tools": definition.tools,
            "inputs": inputs,
        });
        if !memory.is_empty() {
            input["memory"] = Value::Object(memory);
        }
        match self {
            Reasoner::Scripted => {
                if !inputs.is_object() {
                    return Err(ReasonerError::InputsNotObject);
                }
                let output = definition
                    .tools
                    .iter()
                    .map(|tool| PlanStep {
                        timeouts: None,
                        tool: tool.clone(),
                        arguments: inputs.clone(),
                        retry: None,
                    })
                    .collect();
                Ok(PlanExchange {
                    provider: self.name(),
                    model: None,
                    target: None,
                    input,
                    answer: None,
                    output,
                })
            }
            Reasoner::Model(p) => p.plan(mission, &input, http).await,
        }
    }
}

impl ModelProvider {
    async fn plan(
        &self,
        mission: &Mission,
        input: &Value,
        http: &ToolClient,
    ) -> Result<PlanExchange, ReasonerError> {
        let data = &mission.boundary().get().data;
        if !data.allowed_targets.contains(&self.target) {
            return Err(ReasonerError::OutsideBoundary {
                classification: format!("{:?}", data.classification).to_lowercase(),
                target: self.target.clone(),
                allowed: data
                    .allowed_targets
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let question = input.to_string();
        let base = self.url.trim_end_matches('/');
        let key = self.api_key.clone().unwrap_or_default();
        let (url, body, headers) = match self.api {
            ModelApi::OpenAiCompatible => (
                format!("{base}/chat/completions"),
                json!({
                    "model": self.model,
                    "temperature": 0,
                    "messages": [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": question},
                    ],
                }),
                if key.is_empty() {
                    vec![]
                } else {
                    vec![("authorization", format!("Bearer {key}"))]
                },
            ),
            ModelApi::Anthropic => (
                format!("{base}/v1/messages"),
                json!({
                    "model": self.model,
                    "max_tokens": 2048,
                    "temperature": 0,
                    "system": SYSTEM_PROMPT,
                    "messages": [{"role": "user", "content": question}],
                }),
                vec![
                    ("x-api-key", key),
                    ("anthropic-version", "2023-06-01".to_owned()),
                ],
            ),
        };
        let request = JsonRequest {
            body: body.clone(),
            headers,
        };
        let answer = match http.call(&url, self.timeout_ms, &request).await {
            CallResult::Succeeded { output, .. } => output,
            CallResult::Failed {
                failure, message, ..
            } => return Err(ReasonerError::Unavailable { failure, message }),
        };
        let text = match self.api {
            ModelApi::OpenAiCompatible => answer["choices"][0]["message"]["content"].as_str(),
            ModelApi::Anthropic => answer["content"].as_array().and_then(|blocks| {
                blocks
                    .iter()
                    .find(|b| b["type"] == "text")
                    .and_then(|b| b["text"].as_str())
            }),
        }
        .ok_or_else(|| ReasonerError::BadAnswer("the answer holds no text".into()))?;
        let output = parse_plan(text, &mission.definition().tools)?;
        Ok(PlanExchange {
            provider: self.api.name(),
            model: Some(self.model.clone()),
            target: Some(self.target.clone()),
            input: body,
            answer: Some(text.chars().take(MAX_RECORDED_ANSWER_CHARS).collect()),
            output,
        })
    }
}

/// The plan in a model's text: the outermost JSON object (models like to
/// wrap it in prose or code fences), whose steps use only the mission's
/// tools.
fn parse_plan(text: &str, tools: &[ToolName]) -> Result<Vec<PlanStep>, ReasonerError> {
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err(ReasonerError::BadAnswer(
            "no JSON object in the answer".into(),
        ));
    };
    let json = text.get(start..=end).unwrap_or_default();
    let plan: ModelPlan = serde_json::from_str(json)
        .map_err(|e| ReasonerError::BadAnswer(format!("expected {{\"steps\": [...]}}: {e}")))?;
    if plan.steps.is_empty() {
        return Err(ReasonerError::BadAnswer("the plan has no steps".into()));
    }
    plan.steps
        .into_iter()
        .map(|s| {
            if !tools.contains(&s.tool) {
                return Err(ReasonerError::BadAnswer(format!(
                    "`{}` is not one of the mission's tools",
                    s.tool
                )));
            }
            Ok(PlanStep {
                timeouts: None,
                tool: s.tool,
                arguments: s.arguments,
                retry: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<ToolName> {
        vec![ToolName::new("erp.post").unwrap()]
    }

    #[test]
    fn plans_are_found_in_fenced_or_chatty_answers() {
        let text = "Here is the plan:\n```json\n{\"steps\": [{\"tool\": \"erp.post\", \"arguments\": {\"amount\": 7}}]}\n```";
        let steps = parse_plan(text, &tools()).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].arguments, json!({"amount": 7}));
    }

    /// The simulator's missions write working memory; the reasoner is
    /// given it (without its own records) alongside the inputs.
    #[tokio::test]
    async fn the_reasoner_is_given_the_missions_working_memory() {
        use aura_engine::sim;
        let state = sim::state_after(3, sim::WorkloadShape::default());
        let m = state
            .tenants()
            .flat_map(|t| t.missions().values())
            .find(|m| !m.state_data().entries().is_empty() && m.context().get().inputs.is_object())
            .expect("the workload writes working memory")
            .clone();
        let http = ToolClient::new(crate::egress::EgressPolicy::default()).unwrap();
        let exchange = Reasoner::Scripted.plan(&m, &http).await.unwrap();
        let memory = exchange.input["memory"].as_object().expect("memory given");
        assert_eq!(memory.len(), m.state_data().entries().len());
        for (k, v) in m.state_data().entries() {
            assert_eq!(&memory[k], v, "{k}");
        }
    }

    #[test]
    fn answers_that_are_not_plans_are_refused_with_the_reason() {
        for (text, why) in [
            ("I cannot help with that.", "no JSON object"),
            ("{\"plan\": []}", "expected"),
            ("{\"steps\": []}", "no steps"),
            (
                "{\"steps\": [{\"tool\": \"mail.send\", \"arguments\": {}}]}",
                "not one of the mission's tools",
            ),
        ] {
            let err = parse_plan(text, &tools()).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
