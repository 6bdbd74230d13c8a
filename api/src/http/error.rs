//! How the application layer's errors become problems: the one place
//! where domain failures meet HTTP.

use aura_engine::machine::rejection::Rejection;
use aura_raft::ClusterError;

use aura_engine::identity::dualtoken::DualTokenError;
use aura_engine::mission::CallFailure;

use crate::app::AppError;
use crate::gateway::{ARGUMENTS_INVALID, CallError};
use crate::http::problem::{Problem, ProblemKind};
use crate::http::v1::config::etag;
use crate::store::StoreError;

impl From<AppError> for Problem {
    fn from(e: AppError) -> Problem {
        let text = e.to_string();
        match e {
            AppError::NotFound { .. } => Problem::new(ProblemKind::NotFound, text),
            AppError::Forbidden(_) => Problem::new(ProblemKind::Forbidden, text),
            AppError::Conflict(_) => Problem::new(ProblemKind::Conflict, text),
            AppError::VersionRequired { current } => Problem::new(
                ProblemKind::PreconditionRequired,
                format!(
                    "send If-Match with the current ETag ({}) to change this configuration",
                    etag(current)
                ),
            ),
            AppError::VersionMismatch { current } => Problem::new(
                ProblemKind::PreconditionFailed,
                format!(
                    "If-Match does not name a version of this configuration; its ETag is {}",
                    etag(current)
                ),
            ),
            AppError::Invalid(errors) => {
                Problem::new(ProblemKind::Validation, text).with_errors(errors)
            }
            AppError::Refused {
                rejection: r,
                partly_applied,
            } => {
                let mut p = rejection(r);
                p.may_have_taken_effect = partly_applied;
                p
            }
            AppError::Cluster(e) => cluster(e),
            AppError::Store(e) => store(e),
            AppError::Unavailable(_) => Problem::new(ProblemKind::Unavailable, text),
            AppError::Internal(_) => Problem::new(ProblemKind::Internal, text),
        }
    }
}

impl From<CallError> for Problem {
    fn from(e: CallError) -> Problem {
        let text = e.to_string();
        match e {
            CallError::DualToken(e) => {
                let kind = match e {
                    DualTokenError::ToolOutOfScope(_)
                    | DualTokenError::ParameterOutOfBounds { .. } => ProblemKind::Forbidden,
                    _ => ProblemKind::DualTokenRefused,
                };
                Problem::new(kind, text).with_code(e.code())
            }
            CallError::Arguments(errors) => Problem::new(ProblemKind::Validation, text)
                .with_code(ARGUMENTS_INVALID)
                .with_errors(errors),
            CallError::RateLimited { scope, .. } => {
                Problem::new(ProblemKind::RateLimited, text).with_code(scope)
            }
            CallError::Denied(decision) => {
                let mut p = Problem::new(ProblemKind::ToolCallDenied, text);
                p.decision = serde_json::to_value(&decision).ok();
                p
            }
            CallError::Failed { failure, retry, .. } => {
                let mut p =
                    Problem::new(ProblemKind::ToolCallFailed, text).with_code(failure.code());
                if failure == CallFailure::Timeout {
                    p.status = 504;
                }
                p.retry = retry.and_then(|r| serde_json::to_value(r).ok());
                p
            }
            CallError::App(e) => e.into(),
        }
    }
}

pub fn store(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict(_) => Problem::new(ProblemKind::Conflict, "it already exists"),
        StoreError::MissingReference(_) => Problem::new(
            ProblemKind::Validation,
            "it refers to something that does not exist",
        ),
        StoreError::Database(e) => {
            tracing::error!(error = %e, "database error");
            Problem::new(
                ProblemKind::Unavailable,
                "the database did not complete the request",
            )
        }
    }
}

pub fn cluster(e: ClusterError) -> Problem {
    fn kind(e: &ClusterError) -> ProblemKind {
        match e {
            ClusterError::Unknown | ClusterError::EmptySequence => ProblemKind::Internal,
            ClusterError::PartlyApplied { cause, .. } => kind(cause),
            _ => ProblemKind::Unavailable,
        }
    }
    let mut problem = Problem::new(kind(&e), e.to_string());
    // The caller must not assume either way; the Idempotency-Key
    // middleware keeps this answer for retries instead of running the
    // command again.
    problem.may_have_taken_effect = e.may_have_applied();
    problem
}

/// A refusal by the engine's rules. Unknown things are 404, things that
/// exist already are 409 `conflict`, the rest 409 `rejected` (or 422 for
/// malformed input), each with the engine's stable rejection code.
pub fn rejection(r: Rejection) -> Problem {
    let code = serde_json::to_value(&r)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let kind = match &r {
        Rejection::StaleConfig { .. } => ProblemKind::PreconditionFailed,
        Rejection::UnknownTenant(_)
        | Rejection::UnknownNamespace(_)
        | Rejection::UnknownAgent(_)
        | Rejection::UnknownCredential(_)
        | Rejection::UnknownMission(_)
        | Rejection::UnknownSecret(_)
        | Rejection::UnknownUser(_)
        | Rejection::UnknownGroup(_)
        | Rejection::UnknownKey(_)
        | Rejection::NotMember { .. }
        | Rejection::UnknownBundle(_) => ProblemKind::NotFound,
        Rejection::KeyRefused { .. }
        | Rejection::NotDirectoryAdmin
        | Rejection::NotSigningKeyAdmin => ProblemKind::Forbidden,
        Rejection::UserExists(_)
        | Rejection::UserNameTaken(_)
        | Rejection::GroupExists(_)
        | Rejection::KeyExists(_)
        | Rejection::SigningKeyReused
        | Rejection::TenantExists(_)
        | Rejection::NamespaceExists(_)
        | Rejection::MissionExists(_)
        | Rejection::TokenExists(_) => ProblemKind::Conflict,
        Rejection::Definition(_)
        | Rejection::Context(_)
        | Rejection::StateData(_)
        | Rejection::LimitsOutOfRange
        | Rejection::EmptyValidity
        | Rejection::NoTools
        | Rejection::TokenAlreadyExpired
        | Rejection::BadParameterRules { .. }
        | Rejection::BadText { .. }
        | Rejection::Encoding(_)
        | Rejection::BadBundle(_)
        | Rejection::BadConfig(_)
        | Rejection::SecretTooLarge { .. }
        | Rejection::InactiveUser(_)
        | Rejection::KeyRoles
        | Rejection::KeyExpiry
        | Rejection::PlanSize { .. }
        | Rejection::BadStep { .. }
        | Rejection::ArgumentsNotObject { .. }
        | Rejection::LeaseOutOfRange { .. }
        | Rejection::ProgressTooLarge { .. } => ProblemKind::Validation,
        _ => ProblemKind::Rejected,
    };
    Problem::new(kind, r.to_string()).with_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::app::AppError;
    use aura_raft::SequenceApplied;

    #[test]
    fn a_sequence_refused_after_some_commands_took_effect_in_part_is_not_run_again() {
        let refused = |applied: usize| SequenceApplied {
            events: vec![Vec::new(); applied],
            refused: Some(Rejection::NoTools),
        };
        let problem = |done| Problem::from(crate::app::error::all_applied(done).unwrap_err());
        let first = problem(refused(0));
        assert_eq!(first.status, 422);
        assert!(!first.may_have_taken_effect, "nothing was applied");
        let later = problem(refused(1));
        assert_eq!(later.status, 422);
        assert!(later.may_have_taken_effect, "the first command was applied");
    }

    #[test]
    fn not_found_reads_alike_for_every_hidden_thing() {
        let p = Problem::from(AppError::not_found("tenant", "acme"));
        assert_eq!(p.status, 404);
        assert_eq!(p.detail, "tenant `acme` does not exist");
    }

    #[test]
    fn a_sequence_partly_applied_is_unavailable_and_never_run_again() {
        let partly = ClusterError::PartlyApplied {
            applied: 1,
            cause: Box::new(ClusterError::NoLeader),
        };
        let p = cluster(partly);
        assert_eq!(p.status, 503);
        assert!(p.may_have_taken_effect, "the first command took effect");
        let none = cluster(ClusterError::NoLeader);
        assert_eq!(none.status, 503);
        assert!(!none.may_have_taken_effect);
    }
}
