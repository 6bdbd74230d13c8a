//! Tool calls made through the gateway: what was asked, where it went and
//! what came back. The request is committed before the tool is called and
//! the result before the agent hears it, so the record never misses an
//! effect the agent saw.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{self, CanonicalError, Domain};
use crate::digest::Digest;
use crate::ids::{MissionId, TenantId, ToolName};
use crate::mission::retry::{RetryPolicy, RetryState};
use crate::policy::routing::DeploymentTarget;
use crate::time::Timestamp;

pub const CALL_REQUEST_DOMAIN: Domain = Domain::new("aura.tool-call-request/1");
pub const CALL_KEY_DOMAIN: Domain = Domain::new("aura.tool-call-key/1");

/// What an agent asks the gateway to do. Its digest is the `body_digest`
/// of the signed request, so the signature covers every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolCallRequest {
    pub tenant: TenantId,
    pub mission: MissionId,
    /// The plan step the call belongs to.
    pub step: u32,
    /// Which call of that step, from 0. Asking again with the same step
    /// and call is a retry of the same call: same idempotency key.
    #[serde(default)]
    pub call: u32,
    pub tool: ToolName,
    /// A JSON object, free-form (the tool's input schema says what it
    /// takes).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub arguments: Value,
}

impl ToolCallRequest {
    pub fn body_digest(&self) -> Result<Digest, CanonicalError> {
        canonical::digest(CALL_REQUEST_DOMAIN, self)
    }

    /// What the DualToken check compares with the agent's token.
    pub fn as_checked(&self) -> crate::identity::ToolCall<'_> {
        crate::identity::ToolCall {
            tenant: &self.tenant,
            mission: &self.mission,
            tool: &self.tool,
            arguments: &self.arguments,
        }
    }
}

/// The key a tool receives with a call: the same for every retry and
/// recovery of that call, different for every other call.
pub fn idempotency_key(
    tenant: &TenantId,
    mission: &MissionId,
    step: u32,
    call: u32,
) -> Result<String, CanonicalError> {
    Ok(canonical::digest(CALL_KEY_DOMAIN, &(tenant, mission, step, call))?.to_hex())
}

/// Why a call produced no usable result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallFailure {
    /// No answer within the tool's timeout.
    Timeout,
    /// The endpoint could not be reached (connection refused, DNS, TLS).
    Unreachable,
    /// The tool answered with a non-success status.
    HttpStatus,
    /// The answer was larger than the gateway accepts.
    ResponseTooLarge,
    /// The answer was not JSON, or the tool tried to redirect elsewhere.
    InvalidResponse,
    /// The node's egress policy refused the destination (a loopback,
    /// link-local, private or otherwise reserved address the operator has
    /// not allowed). Never retried: the same call would be refused again.
    EgressRefused,
}

impl CallFailure {
    /// Its serialized name, for problem codes.
    pub fn code(self) -> &'static str {
        match self {
            CallFailure::Timeout => "timeout",
            CallFailure::Unreachable => "unreachable",
            CallFailure::HttpStatus => "http_status",
            CallFailure::ResponseTooLarge => "response_too_large",
            CallFailure::InvalidResponse => "invalid_response",
            CallFailure::EgressRefused => "egress_refused",
        }
    }
}

/// What a call came back with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallResult {
    Succeeded {
        status: u16,
        output: Value,
    },
    Failed {
        failure: CallFailure,
        status: Option<u16>,
        message: String,
    },
}

impl CallResult {
    /// What is recorded when `what` answered more than the `max` bytes the
    /// record keeps: the effect happened, only its answer is lost.
    pub fn unrecordable(what: &str, max: usize) -> CallResult {
        CallResult::Failed {
            failure: CallFailure::ResponseTooLarge,
            status: None,
            message: format!("{what} is larger than the {max} bytes recorded"),
        }
    }
}

/// One call of a step, from its first dispatch to its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolCallRecord {
    pub step: u32,
    pub call: u32,
    pub tool: ToolName,
    pub idempotency_key: String,
    pub arguments_digest: Digest,
    pub target: DeploymentTarget,
    pub endpoint: String,
    /// Where a saga sends this call to be undone, as the deployment that
    /// received it declared when it was dispatched.
    pub compensation_endpoint: Option<String>,
    /// How many times the call was handed to the tool: retries after a
    /// failure and re-sends after a lost answer, all with the same key.
    pub dispatches: u32,
    pub first_dispatched_at: Timestamp,
    pub dispatched_at: Timestamp,
    /// The latest attempt's result; `None` while an attempt is out.
    pub result: Option<CallResult>,
    pub completed_at: Option<Timestamp>,
    /// Attempts that came back failed.
    pub failed_attempts: u32,
    /// After a failure: when the call may be sent again, or that it may
    /// not.
    pub retry: Option<RetryState>,
}

impl ToolCallRecord {
    /// Whether the call may be sent (again) at `at`: never sent back, or
    /// failed with a retry due.
    pub fn check_resend(&self, at: Timestamp) -> Result<(), Resend> {
        match (&self.result, &self.retry) {
            (None, _) => Ok(()),
            (Some(CallResult::Succeeded { .. }), _) => Err(Resend::Completed),
            (Some(CallResult::Failed { .. }), Some(RetryState::Scheduled { not_before, .. }))
                if at < *not_before =>
            {
                Err(Resend::NotDue {
                    not_before: *not_before,
                })
            }
            (Some(CallResult::Failed { .. }), Some(RetryState::Scheduled { .. })) => Ok(()),
            (Some(CallResult::Failed { .. }), Some(RetryState::Exhausted { attempts, why })) => {
                Err(Resend::Exhausted {
                    attempts: *attempts,
                    why: why.clone(),
                })
            }
            (Some(CallResult::Failed { .. }), None) => Err(Resend::Completed),
        }
    }

    /// The record of dispatching call `call` of `step` at `at`: the
    /// prior record sent again, or the call's first. Its route is set once
    /// policy permits it ([`ToolCallRecord::with_route`]).
    pub fn dispatch(
        prior: Option<&ToolCallRecord>,
        step: u32,
        call: u32,
        tool: &ToolName,
        idempotency_key: &str,
        arguments_digest: Digest,
        at: Timestamp,
    ) -> ToolCallRecord {
        match prior {
            Some(p) => p.resent(at),
            None => ToolCallRecord::unsent(
                step,
                call,
                tool.clone(),
                idempotency_key.to_owned(),
                arguments_digest,
                at,
            )
            .resent(at),
        }
    }

    /// A record of call `call` of `step` that nothing has been sent for
    /// yet (a first dispatch, or a saga's compensation), with no route.
    pub fn unsent(
        step: u32,
        call: u32,
        tool: ToolName,
        idempotency_key: String,
        arguments_digest: Digest,
        at: Timestamp,
    ) -> ToolCallRecord {
        ToolCallRecord {
            step,
            call,
            tool,
            idempotency_key,
            arguments_digest,
            target: String::new(),
            endpoint: String::new(),
            compensation_endpoint: None,
            dispatches: 0,
            first_dispatched_at: at,
            dispatched_at: at,
            result: None,
            completed_at: None,
            failed_attempts: 0,
            retry: None,
        }
    }

    /// The record sent to `endpoint` of deployment `target`.
    pub fn with_route(
        self,
        target: DeploymentTarget,
        endpoint: String,
        compensation_endpoint: Option<String>,
    ) -> ToolCallRecord {
        ToolCallRecord {
            target,
            endpoint,
            compensation_endpoint,
            ..self
        }
    }

    /// The record with another attempt out.
    pub fn resent(&self, at: Timestamp) -> ToolCallRecord {
        ToolCallRecord {
            dispatches: self.dispatches + 1,
            dispatched_at: at,
            result: None,
            completed_at: None,
            retry: None,
            ..self.clone()
        }
    }

    /// The record with an attempt's result; a failure is scheduled for
    /// retry, or not, by `policy`.
    pub fn completed(
        &self,
        result: CallResult,
        at: Timestamp,
        policy: &RetryPolicy,
    ) -> ToolCallRecord {
        let retry = match &result {
            CallResult::Succeeded { .. } => None,
            CallResult::Failed { failure, .. } => Some(policy.after_failure(
                *failure,
                self.failed_attempts + 1,
                self.first_dispatched_at,
                at,
            )),
        };
        self.completed_with(result, at, retry)
    }

    /// The record with an attempt's result and the retry decided on it.
    pub fn completed_with(
        &self,
        result: CallResult,
        at: Timestamp,
        retry: Option<RetryState>,
    ) -> ToolCallRecord {
        let failed = matches!(result, CallResult::Failed { .. });
        ToolCallRecord {
            result: Some(result),
            completed_at: Some(at),
            failed_attempts: self.failed_attempts + u32::from(failed),
            retry,
            ..self.clone()
        }
    }

    /// The record after an approver allowed more attempts: due at once,
    /// counted afresh from `at`.
    pub fn with_fresh_attempts(&self, at: Timestamp) -> ToolCallRecord {
        ToolCallRecord {
            failed_attempts: 0,
            first_dispatched_at: at,
            retry: Some(RetryState::Scheduled {
                attempt: 1,
                not_before: at,
            }),
            ..self.clone()
        }
    }

    pub fn succeeded_output(&self) -> Option<&Value> {
        match &self.result {
            Some(CallResult::Succeeded { output, .. }) => Some(output),
            _ => None,
        }
    }

    /// Whether the call ended for good without success.
    pub fn failed_for_good(&self) -> bool {
        matches!(self.retry, Some(RetryState::Exhausted { .. }))
    }
}

/// Why a call may not be sent again now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resend {
    Completed,
    NotDue { not_before: Timestamp },
    Exhausted { attempts: u32, why: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes_are_the_serialized_names() {
        for f in [
            CallFailure::Timeout,
            CallFailure::Unreachable,
            CallFailure::HttpStatus,
            CallFailure::ResponseTooLarge,
            CallFailure::InvalidResponse,
            CallFailure::EgressRefused,
        ] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.code());
        }
    }
}
