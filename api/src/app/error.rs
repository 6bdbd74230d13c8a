//! What a use case can fail with, in the domain's own words. The HTTP
//! edge maps these to RFC 9457 problems (`crate::http::error`), the runtime
//! records their text; neither the words nor the types here know HTTP.

use aura_engine::Digest;
use aura_engine::machine::Event;
use aura_engine::machine::rejection::Rejection;
use aura_raft::{ClusterError, SequenceApplied};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::StoreError;

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the field, e.g. `/definition/timeout_ms`.
    pub pointer: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing does not exist, or the caller may not see it: the two
    /// read alike, so that a caller learns nothing of other tenants.
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    /// The caller is known but lacks what the use case needs.
    #[error("{0}")]
    Forbidden(String),
    /// What the caller asked for clashes with what exists (a taken name,
    /// an administrator removing themselves).
    #[error("{0}")]
    Conflict(String),
    /// A change to shared configuration did not name the version it
    /// replaces; `current` is the version now.
    #[error("name the version this change replaces; it is now {}", .current.to_hex())]
    VersionRequired { current: Digest },
    /// The version a change replaces is not the current one.
    #[error("the configuration is at version {} now, not the one this change replaces", .current.to_hex())]
    VersionMismatch { current: Digest },
    /// What the caller sent is malformed, field by field.
    #[error("{}", joined(.0))]
    Invalid(Vec<FieldError>),
    /// The engine's rules refused a command. `partly_applied`: commands
    /// before it in the same request took effect.
    #[error("{rejection}")]
    Refused {
        rejection: Rejection,
        partly_applied: bool,
    },
    /// The cluster did not apply the command, or cannot say whether it did.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A dependency that is not the engine or the database (the replay
    /// cache, the rate limiter) cannot answer.
    #[error("{0}")]
    Unavailable(String),
    /// Something that must hold did not: a bug, not the caller's doing.
    #[error("{0}")]
    Internal(String),
}

/// Field errors as one line of text.
pub(crate) fn joined(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.pointer, e.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AppError {
    /// The error for a named thing that is missing or hidden.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> AppError {
        AppError::NotFound {
            what,
            id: id.into(),
        }
    }

    /// One invalid field.
    pub fn invalid(pointer: &str, detail: impl Into<String>) -> AppError {
        AppError::Invalid(vec![FieldError {
            pointer: pointer.to_owned(),
            detail: detail.into(),
        }])
    }

    /// Whether the request may have taken effect despite failing, or took
    /// effect in part: a retry must not run it again as if it had not.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            AppError::Refused { partly_applied, .. } => *partly_applied,
            AppError::Cluster(e) => e.may_have_applied(),
            _ => false,
        }
    }
}

impl From<Rejection> for AppError {
    fn from(rejection: Rejection) -> AppError {
        AppError::Refused {
            rejection,
            partly_applied: false,
        }
    }
}

/// A sequence's outcome for a use case that needs all of it: its events,
/// or the refusal that ended it, marked as having taken effect in part
/// when commands before it were applied.
pub fn all_applied(done: SequenceApplied) -> Result<Vec<Vec<Event>>, AppError> {
    match done.refused {
        None => Ok(done.events),
        Some(rejection) => Err(AppError::Refused {
            rejection,
            partly_applied: !done.events.is_empty(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_error_after_which_a_command_may_have_applied_says_so() {
        let partly = AppError::from(ClusterError::PartlyApplied {
            applied: 1,
            cause: Box::new(ClusterError::NoLeader),
        });
        assert!(partly.may_have_taken_effect());
        assert!(!AppError::from(ClusterError::NoLeader).may_have_taken_effect());
    }
}
