//! ExecutionTokens: per-mission permission to call a set of tools, with
//! fixed arguments and numeric bounds, until an expiry.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{CanonicalError, Domain};
use crate::digest::Digest;
use crate::identity::key_id::{SigningKeyId, serialize_signed};
use crate::identity::keys::{KeyPair, PublicKey, Signature, SignatureError};
use crate::ids::{AgentId, MissionId, TenantId, TokenId, ToolName};
use crate::time::Timestamp;

pub const TOKEN_DOMAIN: Domain = Domain::new("aura.execution-token/1");

/// An inclusive numeric range for one argument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NumericBound {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Constraints on one tool's arguments. Arguments are addressed by JSON
/// Pointer (RFC 6901), e.g. `/payment/amount`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParameterRules {
    /// Arguments that must be present and equal to exactly this value.
    #[serde(default)]
    pub fixed: BTreeMap<String, Value>,
    /// Arguments that must be present, numeric and within the bound.
    #[serde(default)]
    pub bounds: BTreeMap<String, NumericBound>,
}

/// Why a tool call's arguments fall outside the token's rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ParameterViolation {
    #[error("argument {pointer} is required by the token but missing")]
    Missing { pointer: String },
    #[error("argument {pointer} is fixed by the token and may not be changed")]
    FixedChanged { pointer: String },
    #[error("argument {pointer} must be a number")]
    NotNumeric { pointer: String },
    #[error("argument {pointer} = {value} is below the minimum {min}")]
    BelowMin {
        pointer: String,
        value: String,
        min: String,
    },
    #[error("argument {pointer} = {value} is above the maximum {max}")]
    AboveMax {
        pointer: String,
        value: String,
        max: String,
    },
}

impl ParameterRules {
    pub fn check(&self, arguments: &Value) -> Result<(), ParameterViolation> {
        for (pointer, expected) in &self.fixed {
            match arguments.pointer(pointer) {
                None => {
                    return Err(ParameterViolation::Missing {
                        pointer: pointer.clone(),
                    });
                }
                Some(actual) if actual != expected => {
                    return Err(ParameterViolation::FixedChanged {
                        pointer: pointer.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        for (pointer, bound) in &self.bounds {
            let value = arguments
                .pointer(pointer)
                .ok_or_else(|| ParameterViolation::Missing {
                    pointer: pointer.clone(),
                })?;
            let number = value
                .as_f64()
                .ok_or_else(|| ParameterViolation::NotNumeric {
                    pointer: pointer.clone(),
                })?;
            if let Some(min) = bound.min
                && number < min
            {
                return Err(ParameterViolation::BelowMin {
                    pointer: pointer.clone(),
                    value: value.to_string(),
                    min: min.to_string(),
                });
            }
            if let Some(max) = bound.max
                && number > max
            {
                return Err(ParameterViolation::AboveMax {
                    pointer: pointer.clone(),
                    value: value.to_string(),
                    max: max.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Pointers must be RFC 6901 pointers, and bounds well formed.
    pub fn validate(&self) -> Result<(), String> {
        for pointer in self.fixed.keys().chain(self.bounds.keys()) {
            if !pointer.starts_with('/') {
                return Err(format!(
                    "`{pointer}` is not a JSON Pointer (it must start with '/')"
                ));
            }
        }
        for (pointer, bound) in &self.bounds {
            for v in [bound.min, bound.max].into_iter().flatten() {
                if !v.is_finite() {
                    return Err(format!("bound on {pointer} must be a finite number"));
                }
            }
            if let (Some(min), Some(max)) = (bound.min, bound.max)
                && min > max
            {
                return Err(format!("bound on {pointer} has min {min} above max {max}"));
            }
        }
        Ok(())
    }
}

/// What an ExecutionToken grants. Valid for one mission only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionTokenClaims {
    pub token: TokenId,
    pub tenant: TenantId,
    pub mission: MissionId,
    pub agent: AgentId,
    pub allowed_tools: BTreeSet<ToolName>,
    pub parameters: BTreeMap<ToolName, ParameterRules>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// Digest of the mission's frozen boundary at issue time.
    pub boundary_digest: Digest,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionToken {
    pub claims: ExecutionTokenClaims,
    pub signature: Signature,
    /// The tenant key that signed it (absent: the tenant's first key,
    /// which signed everything made before keys were named).
    #[serde(default)]
    pub key_id: Option<SigningKeyId>,
}

impl Serialize for ExecutionToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let key_id = self.key_id.as_ref();
        serialize_signed(
            s,
            "ExecutionToken",
            "claims",
            &self.claims,
            &self.signature,
            key_id,
        )
    }
}

impl ExecutionToken {
    pub fn issue(
        claims: ExecutionTokenClaims,
        tenant_key: &KeyPair,
    ) -> Result<Self, CanonicalError> {
        let signature = tenant_key.sign(TOKEN_DOMAIN, &claims)?;
        let key_id = Some(SigningKeyId::of(&claims.tenant, &tenant_key.public()));
        Ok(ExecutionToken {
            claims,
            signature,
            key_id,
        })
    }

    pub fn verify_signature(&self, tenant_key: &PublicKey) -> Result<(), SignatureError> {
        tenant_key.verify(TOKEN_DOMAIN, &self.claims, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ParameterRules {
        ParameterRules {
            fixed: BTreeMap::from([("/currency".into(), json!("EUR"))]),
            bounds: BTreeMap::from([(
                "/amount".into(),
                NumericBound {
                    min: Some(0.0),
                    max: Some(500.0),
                },
            )]),
        }
    }

    #[test]
    fn parameter_rules_hold_and_explain_violations() {
        let r = rules();
        assert_eq!(r.check(&json!({"currency": "EUR", "amount": 500})), Ok(()));
        assert!(matches!(
            r.check(&json!({"currency": "USD", "amount": 5})),
            Err(ParameterViolation::FixedChanged { .. })
        ));
        assert!(matches!(
            r.check(&json!({"currency": "EUR", "amount": 500.5})),
            Err(ParameterViolation::AboveMax { .. })
        ));
        assert!(matches!(
            r.check(&json!({"currency": "EUR", "amount": -1})),
            Err(ParameterViolation::BelowMin { .. })
        ));
        assert!(matches!(
            r.check(&json!({"currency": "EUR", "amount": "5"})),
            Err(ParameterViolation::NotNumeric { .. })
        ));
        assert!(matches!(
            r.check(&json!({"currency": "EUR"})),
            Err(ParameterViolation::Missing { .. })
        ));
    }

    #[test]
    fn parameter_rules_validate_their_shape() {
        let mut r = rules();
        assert_eq!(r.validate(), Ok(()));
        r.bounds.insert(
            "/x".into(),
            NumericBound {
                min: Some(2.0),
                max: Some(1.0),
            },
        );
        assert!(r.validate().unwrap_err().contains("above max"));
        r.fixed.insert("no-slash".into(), json!(1));
        assert!(r.validate().unwrap_err().contains("JSON Pointer"));
    }
}
