//! The 8-state mission machine. The only way to move a mission is
//! [`MissionState::next`], which refuses every move the lifecycle does not
//! allow: success never skips a state, and abnormal ends go straight to
//! CLOSED with a reason that names the state they left.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MissionState {
    Created,
    Planning,
    WaitingApproval,
    Approved,
    PendingExecution,
    InProgress,
    Executed,
    Closed,
}

impl MissionState {
    pub const ALL: [MissionState; 8] = [
        MissionState::Created,
        MissionState::Planning,
        MissionState::WaitingApproval,
        MissionState::Approved,
        MissionState::PendingExecution,
        MissionState::InProgress,
        MissionState::Executed,
        MissionState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MissionState::Created => "CREATED",
            MissionState::Planning => "PLANNING",
            MissionState::WaitingApproval => "WAITING_APPROVAL",
            MissionState::Approved => "APPROVED",
            MissionState::PendingExecution => "PENDING_EXECUTION",
            MissionState::InProgress => "IN_PROGRESS",
            MissionState::Executed => "EXECUTED",
            MissionState::Closed => "CLOSED",
        }
    }

    pub fn is_closed(self) -> bool {
        self == MissionState::Closed
    }

    /// The only transition function. Returns the state `step` leads to.
    pub fn next(self, step: Step) -> Result<MissionState, IllegalTransition> {
        use MissionState as S;
        let to = match (self, step) {
            (S::Created, Step::BeginPlanning) => S::Planning,
            (S::Planning, Step::SubmitPlan) => S::WaitingApproval,
            (S::WaitingApproval, Step::Approve) => S::Approved,
            (S::Approved, Step::Enqueue) => S::PendingExecution,
            (S::PendingExecution, Step::Start) => S::InProgress,
            (S::InProgress, Step::Complete) => S::Executed,
            (S::Executed, Step::Seal) => S::Closed,
            (from, Step::Abort(reason)) if reason.may_leave(from) => S::Closed,
            (from, step) => return Err(IllegalTransition { from, step }),
        };
        Ok(to)
    }
}

impl fmt::Display for MissionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a mission ended without success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AbortReason {
    /// Policy said DENY.
    Denied,
    /// An approver rejected it.
    Rejected,
    /// Someone with the authority to cancel did.
    Cancelled,
    /// Its deadline passed.
    TimedOut,
    /// Execution failed for good (after compensation, if any).
    Failed,
}

impl AbortReason {
    /// The states each kind of abnormal end may leave from.
    pub fn may_leave(self, from: MissionState) -> bool {
        use MissionState as S;
        match self {
            AbortReason::Denied => matches!(from, S::Planning | S::WaitingApproval),
            AbortReason::Rejected => from == S::WaitingApproval,
            AbortReason::Cancelled | AbortReason::TimedOut => {
                !matches!(from, S::Executed | S::Closed)
            }
            AbortReason::Failed => {
                matches!(from, S::Planning | S::PendingExecution | S::InProgress)
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AbortReason::Denied => "denied",
            AbortReason::Rejected => "rejected",
            AbortReason::Cancelled => "cancelled",
            AbortReason::TimedOut => "timed_out",
            AbortReason::Failed => "failed",
        }
    }
}

/// A move a command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Step {
    BeginPlanning,
    SubmitPlan,
    Approve,
    Enqueue,
    Start,
    Complete,
    Seal,
    Abort(AbortReason),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::BeginPlanning => f.write_str("begin planning"),
            Step::SubmitPlan => f.write_str("submit plan"),
            Step::Approve => f.write_str("approve"),
            Step::Enqueue => f.write_str("enqueue"),
            Step::Start => f.write_str("start"),
            Step::Complete => f.write_str("complete"),
            Step::Seal => f.write_str("seal"),
            Step::Abort(r) => write!(f, "close as {}", r.as_str()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("a mission in {from} cannot {step}")]
pub struct IllegalTransition {
    pub from: MissionState,
    pub step: Step,
}

#[cfg(test)]
mod tests {
    use super::*;
    use MissionState as S;

    const STEPS: [Step; 12] = [
        Step::BeginPlanning,
        Step::SubmitPlan,
        Step::Approve,
        Step::Enqueue,
        Step::Start,
        Step::Complete,
        Step::Seal,
        Step::Abort(AbortReason::Denied),
        Step::Abort(AbortReason::Rejected),
        Step::Abort(AbortReason::Cancelled),
        Step::Abort(AbortReason::TimedOut),
        Step::Abort(AbortReason::Failed),
    ];

    #[test]
    fn success_path_visits_every_state_in_order() {
        let path = [
            Step::BeginPlanning,
            Step::SubmitPlan,
            Step::Approve,
            Step::Enqueue,
            Step::Start,
            Step::Complete,
            Step::Seal,
        ];
        let mut s = S::Created;
        let mut seen = vec![s];
        for step in path {
            s = s.next(step).unwrap();
            seen.push(s);
        }
        assert_eq!(seen, S::ALL.to_vec());
    }

    #[test]
    fn non_abort_moves_only_go_one_state_forward() {
        for from in S::ALL {
            for step in STEPS {
                if let Ok(to) = from.next(step) {
                    match step {
                        Step::Abort(_) => assert_eq!(to, S::Closed),
                        _ => assert_eq!(to as u8, from as u8 + 1, "{from} --{step}--> {to}"),
                    }
                }
            }
        }
    }

    #[test]
    fn closed_is_terminal() {
        for step in STEPS {
            assert_eq!(
                S::Closed.next(step),
                Err(IllegalTransition {
                    from: S::Closed,
                    step
                })
            );
        }
    }

    #[test]
    fn abnormal_ends_leave_only_from_their_states() {
        assert!(
            S::WaitingApproval
                .next(Step::Abort(AbortReason::Rejected))
                .is_ok()
        );
        assert!(
            S::InProgress
                .next(Step::Abort(AbortReason::Rejected))
                .is_err()
        );
        assert!(S::Created.next(Step::Abort(AbortReason::Denied)).is_err());
        assert!(
            S::Executed
                .next(Step::Abort(AbortReason::Cancelled))
                .is_err()
        );
        assert!(
            S::Executed
                .next(Step::Abort(AbortReason::TimedOut))
                .is_err()
        );
        assert!(S::InProgress.next(Step::Abort(AbortReason::Failed)).is_ok());
        assert!(S::Approved.next(Step::Abort(AbortReason::Failed)).is_err());
        let err = S::Created.next(Step::Start).unwrap_err();
        assert_eq!(err.to_string(), "a mission in CREATED cannot start");
    }
}
