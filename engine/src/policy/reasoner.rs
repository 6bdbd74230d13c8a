//! Which reasoner plans a namespace's missions.
//!
//! The choice decides where a mission's objective and inputs go, so it is
//! namespace configuration like routing: replicated, versioned and audited.
//! Keys are not: the configuration names a secret, and each node reads the
//! secret from its own secrets directory when it asks the model.

use serde::{Deserialize, Serialize};

use crate::mission::RetryPolicy;
use crate::policy::routing::{DeploymentTarget, validate_target, validate_url};

/// Shortest and longest time a node waits for a model's answer.
pub const MIN_TIMEOUT_MS: u64 = 1_000;
pub const MAX_TIMEOUT_MS: u64 = 600_000;
const MAX_MODEL_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ReasonerConfig {
    /// No model: one step per tool of the definition, in order, each
    /// called with the mission's inputs. A struct variant with no fields,
    /// so that serde refuses a field sent with it (it ignores any beside
    /// the tag of a unit variant).
    Scripted {},
    /// The Anthropic Messages API (`POST {url}/v1/messages`).
    Anthropic(ModelSettings),
    /// OpenAI-compatible chat completions (`POST {url}/chat/completions`):
    /// OpenAI, Ollama, vLLM, llama.cpp servers.
    OpenaiCompatible(ModelSettings),
}

/// A model reasoner's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelSettings {
    /// For Anthropic the base (`https://api.anthropic.com`); for an
    /// OpenAI-compatible server the path up to `/chat/completions`
    /// (`http://127.0.0.1:11434/v1`).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^https?://\S+$", max_length = 2048)
    )]
    pub url: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
        )
    )]
    pub model: String,
    /// Where the provider runs: a mission's data reaches it only where the
    /// mission's frozen data boundary allows this target.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, pattern = r"^(on-prem|cloud|region:[a-z0-9-]{1,64})$")
    )]
    pub target: DeploymentTarget,
    #[serde(default = "default_timeout_ms")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 600_000))]
    pub timeout_ms: u64,
    /// The name of the tenant's secret that holds the API key
    /// (`PUT /v1/tenants/{tenant}/secrets/{name}`); none for a local
    /// server that takes no key.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
    )]
    pub api_key_secret: Option<String>,
    /// How a model that does not answer is asked again (the tools' retry
    /// policy; the default when absent).
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
}

fn default_timeout_ms() -> u64 {
    60_000
}

impl Default for ReasonerConfig {
    fn default() -> Self {
        ReasonerConfig::Scripted {}
    }
}

impl ReasonerConfig {
    /// The provider's name as recorded with each planning exchange.
    pub fn provider(&self) -> &'static str {
        match self {
            ReasonerConfig::Scripted {} => "scripted",
            ReasonerConfig::Anthropic(_) => "anthropic",
            ReasonerConfig::OpenaiCompatible(_) => "openai-compatible",
        }
    }

    pub fn model(&self) -> Option<&ModelSettings> {
        match self {
            ReasonerConfig::Scripted {} => None,
            ReasonerConfig::Anthropic(m) | ReasonerConfig::OpenaiCompatible(m) => Some(m),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let Some(m) = self.model() else {
            return Ok(());
        };
        validate_url("url", &m.url)?;
        let chars = m.model.chars().count();
        if chars == 0 || chars > MAX_MODEL_CHARS || m.model.chars().any(char::is_control) {
            return Err(format!(
                "model must be 1 to {MAX_MODEL_CHARS} characters without control characters"
            ));
        }
        validate_target(&m.target)?;
        if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&m.timeout_ms) {
            return Err(format!(
                "timeout_ms must be {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}"
            ));
        }
        if let Some(r) = &m.retry {
            r.validate()?;
        }
        match (&m.api_key_secret, self) {
            (None, ReasonerConfig::Anthropic(_)) => {
                Err("the anthropic provider needs api_key_secret".into())
            }
            (Some(name), _) => validate_secret_name(name),
            (None, _) => Ok(()),
        }
    }
}

/// A secret name is one of the tenant's secrets' names.
fn validate_secret_name(name: &str) -> Result<(), String> {
    crate::secret::SecretName::new(name)
        .map(|_| ())
        .map_err(|e| format!("api_key_secret: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<ReasonerConfig, String> {
        let c: ReasonerConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        c.validate().map(|()| c)
    }

    #[test]
    fn a_model_reasoner_is_read_with_its_defaults() {
        let c = parse(
            json!({"provider": "openai-compatible", "url": "http://127.0.0.1:11434/v1",
                             "model": "llama3", "target": "on-prem"}),
        )
        .unwrap();
        let m = c.model().unwrap();
        assert_eq!(m.timeout_ms, 60_000);
        assert_eq!(m.api_key_secret, None);
        assert_eq!(c.provider(), "openai-compatible");
        assert_eq!(
            parse(json!({"provider": "scripted"})).unwrap(),
            ReasonerConfig::Scripted {}
        );
    }

    #[test]
    fn a_field_no_provider_has_is_refused() {
        let e = parse(json!({"provider": "scripted", "model": "llama3"})).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let mut model = json!({"provider": "openai-compatible", "url": "http://127.0.0.1:11434/v1",
                               "model": "llama3", "target": "on-prem"});
        model["temperature"] = json!(0);
        assert!(parse(model).unwrap_err().contains("unknown field"));
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let base = json!({"provider": "anthropic", "url": "https://api.anthropic.com",
                          "model": "claude", "target": "cloud", "api_key_secret": "anthropic"});
        assert!(parse(base.clone()).is_ok());
        for (field, value, says) in [
            ("provider", json!("gpt"), "unknown variant"),
            ("url", json!("ftp://x"), "not an http"),
            ("model", json!(""), "model must be"),
            ("target", json!("mars"), "not a deployment target"),
            ("timeout_ms", json!(10), "timeout_ms must be"),
            ("api_key_secret", json!("../etc/passwd"), "must be 1 to"),
            ("api_key_secret", json!(null), "needs api_key_secret"),
            ("colour", json!("red"), "unknown field"),
            ("retry", json!({"maximum_attempts": 0}), "maximum_attempts"),
        ] {
            let mut v = base.clone();
            v[field] = value;
            let err = parse(v).unwrap_err();
            assert!(err.contains(says), "{field}: {err}");
        }
    }
}
