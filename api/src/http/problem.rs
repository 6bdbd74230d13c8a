//! RFC 9457 problem details: every error the API returns is one of these,
//! as `application/problem+json`, with a stable `type` per kind of error so
//! that clients branch on the type, never on the human-readable text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The kinds of error, each with its `type` URI and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    NotFound,
    MethodNotAllowed,
    BadRequest,
    Validation,
    PayloadTooLarge,
    UnsupportedMediaType,
    Timeout,
    NotReady,
    Internal,
    Unauthorized,
    Forbidden,
    Conflict,
    /// The engine refused the command under its rules (the `code` member
    /// says which rule).
    Rejected,
    PreconditionFailed,
    PreconditionRequired,
    IdempotencyMismatch,
    IdempotencyInProgress,
    /// The engine or the database cannot take requests right now.
    Unavailable,
    /// A gateway request failed its DualToken check (`code` says which).
    DualTokenRefused,
    /// Policy denied a tool call (`decision` holds the record).
    ToolCallDenied,
    /// The tool was called and failed (`code` says how).
    ToolCallFailed,
    /// A rate limit was reached; `Retry-After` says when to try again.
    RateLimited,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            ProblemKind::NotFound => "not-found",
            ProblemKind::MethodNotAllowed => "method-not-allowed",
            ProblemKind::BadRequest => "bad-request",
            ProblemKind::Validation => "validation",
            ProblemKind::PayloadTooLarge => "payload-too-large",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::Timeout => "timeout",
            ProblemKind::NotReady => "not-ready",
            ProblemKind::Internal => "internal",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::Forbidden => "forbidden",
            ProblemKind::Conflict => "conflict",
            ProblemKind::Rejected => "rejected",
            ProblemKind::PreconditionFailed => "precondition-failed",
            ProblemKind::PreconditionRequired => "precondition-required",
            ProblemKind::IdempotencyMismatch => "idempotency-key-reused",
            ProblemKind::IdempotencyInProgress => "idempotency-key-in-progress",
            ProblemKind::Unavailable => "unavailable",
            ProblemKind::DualTokenRefused => "dualtoken-refused",
            ProblemKind::ToolCallDenied => "tool-call-denied",
            ProblemKind::ToolCallFailed => "tool-call-failed",
            ProblemKind::RateLimited => "rate-limited",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ProblemKind::NotFound => StatusCode::NOT_FOUND,
            ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemKind::BadRequest => StatusCode::BAD_REQUEST,
            ProblemKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ProblemKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemKind::Forbidden => StatusCode::FORBIDDEN,
            ProblemKind::Conflict => StatusCode::CONFLICT,
            ProblemKind::Rejected => StatusCode::CONFLICT,
            ProblemKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ProblemKind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ProblemKind::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::IdempotencyInProgress => StatusCode::CONFLICT,
            ProblemKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::DualTokenRefused => StatusCode::UNAUTHORIZED,
            ProblemKind::ToolCallDenied => StatusCode::FORBIDDEN,
            ProblemKind::ToolCallFailed => StatusCode::BAD_GATEWAY,
            ProblemKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn title(self) -> &'static str {
        match self {
            ProblemKind::NotFound => "Not found",
            ProblemKind::MethodNotAllowed => "Method not allowed",
            ProblemKind::BadRequest => "Bad request",
            ProblemKind::Validation => "Validation failed",
            ProblemKind::PayloadTooLarge => "Payload too large",
            ProblemKind::UnsupportedMediaType => "Unsupported media type",
            ProblemKind::Timeout => "Request timed out",
            ProblemKind::NotReady => "Not ready",
            ProblemKind::Internal => "Internal error",
            ProblemKind::Unauthorized => "Unauthorized",
            ProblemKind::Forbidden => "Forbidden",
            ProblemKind::Conflict => "Conflict",
            ProblemKind::Rejected => "Refused by the engine",
            ProblemKind::PreconditionFailed => "Precondition failed",
            ProblemKind::PreconditionRequired => "Precondition required",
            ProblemKind::IdempotencyMismatch => "Idempotency key reused",
            ProblemKind::IdempotencyInProgress => "Idempotency key in progress",
            ProblemKind::Unavailable => "Unavailable",
            ProblemKind::DualTokenRefused => "DualToken check failed",
            ProblemKind::ToolCallDenied => "Tool call denied by policy",
            ProblemKind::ToolCallFailed => "Tool call failed",
            ProblemKind::RateLimited => "Rate limit reached",
        }
    }

    pub fn type_uri(self) -> String {
        format!("urn:aura:problem:{}", self.slug())
    }
}

pub use crate::app::FieldError;

/// An RFC 9457 problem details object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of error, e.g. `urn:aura:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, for people.
    pub detail: String,
    /// The request id (also in the `x-request-id` header), for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For validation errors: each invalid field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For `rejected`: the engine's rule that refused the command, e.g.
    /// `illegal_transition` (stable; see docs/api.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// For `tool-call-denied`: the policy decision record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<aura_engine::policy::DecisionRecord>)]
    pub decision: Option<serde_json::Value>,
    /// For `tool-call-failed`: whether the same call may be sent again
    /// (`{retry: "scheduled", attempt, not_before}`, with `Retry-After`)
    /// or not (`{retry: "exhausted", attempts, why}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<aura_engine::mission::retry::RetryState>)]
    pub retry: Option<serde_json::Value>,
    /// For an error after which the write may have taken effect, or took
    /// effect in part: the resource it creates or changes, to read to
    /// learn its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The write may have taken effect despite this error, or took effect
    /// in part, so an `Idempotency-Key` retry must not run it again.
    #[serde(skip)]
    pub may_have_taken_effect: bool,
}

/// Marks a response whose request may have taken effect although it
/// failed (see [`Problem::may_have_taken_effect`]).
#[derive(Clone, Copy, Debug)]
pub struct MayHaveTakenEffect;

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Problem {
        Problem {
            kind: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            instance: None,
            errors: Vec::new(),
            code: None,
            decision: None,
            retry: None,
            resource: None,
            may_have_taken_effect: false,
        }
    }

    /// The 404 for a named thing, worded alike everywhere so that a
    /// resource the caller may not see reads exactly like a missing one.
    pub fn not_found(what: &str, id: &str) -> Problem {
        Problem::new(
            ProblemKind::NotFound,
            format!("{what} `{id}` does not exist"),
        )
    }

    /// One invalid field.
    pub fn invalid(pointer: &str, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        Problem::new(ProblemKind::Validation, format!("{pointer}: {detail}")).with_errors(vec![
            FieldError {
                pointer: pointer.to_owned(),
                detail,
            },
        ])
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Problem {
        self.code = Some(code.into());
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Problem {
        self.errors = errors;
        self
    }

    /// Names the resource a write whose outcome is unknown, or that took
    /// effect in part, created or changed; other problems stay as they
    /// are.
    pub fn with_resource_if_unsettled(mut self, resource: impl FnOnce() -> String) -> Problem {
        if self.may_have_taken_effect {
            self.resource = Some(resource());
        }
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("problems serialize");
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if self.may_have_taken_effect {
            resp.extensions_mut().insert(MayHaveTakenEffect);
        }
        resp
    }
}

/// `resp` with `Retry-After` in whole seconds (at least 1) for a wait of
/// `ms` milliseconds.
pub fn retry_after(mut resp: Response, ms: u64) -> Response {
    let secs = ms.div_ceil(1000).max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_problem_json_with_its_status() {
        let r = Problem::new(ProblemKind::NotFound, "no such mission").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    }

    #[test]
    fn validation_problems_carry_field_errors() {
        let p = Problem::new(ProblemKind::Validation, "invalid mission").with_errors(vec![
            FieldError {
                pointer: "/timeout_ms".into(),
                detail: "must be positive".into(),
            },
        ]);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:aura:problem:validation");
        assert_eq!(v["status"], 422);
        assert_eq!(v["errors"][0]["pointer"], "/timeout_ms");
    }
}
