//! How failures below the API become problems.

use aura_engine::machine::Event;
use aura_engine::machine::rejection::Rejection;
use aura_raft::{ClusterError, SequenceApplied};

use crate::problem::{Problem, ProblemKind};
use crate::store::StoreError;

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

/// A sequence's outcome for a request that needs all of it: its events,
/// or the refusal that ended it, marked as having taken effect in part
/// when commands before it were applied.
pub fn sequence(done: SequenceApplied) -> Result<Vec<Vec<Event>>, Problem> {
    match done.refused {
        None => Ok(done.events),
        Some(refused) => {
            let mut p = rejection(refused);
            p.may_have_taken_effect = !done.events.is_empty();
            Err(p)
        }
    }
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
        | Rejection::UnknownBundle(_) => ProblemKind::NotFound,
        Rejection::TenantExists(_)
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

    #[test]
    fn a_sequence_refused_after_some_commands_took_effect_in_part() {
        let refused = |applied: usize| SequenceApplied {
            events: vec![Vec::new(); applied],
            refused: Some(Rejection::NoTools),
        };
        let first = sequence(refused(0)).unwrap_err();
        assert_eq!(first.status, 422);
        assert!(!first.may_have_taken_effect, "nothing was applied");
        let later = sequence(refused(1)).unwrap_err();
        assert_eq!(later.status, 422);
        assert!(later.may_have_taken_effect, "the first command was applied");
        let all = SequenceApplied {
            events: vec![Vec::new(); 2],
            refused: None,
        };
        assert_eq!(sequence(all).unwrap().len(), 2);
    }
}
