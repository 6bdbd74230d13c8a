//! The runtime's timers. The engine never reads a clock, so "the lease ran
//! out" or "the approval deadline passed" becomes true only when someone
//! proposes it, with the time stamped in the command (a step's timeouts
//! likewise). The leader's API node
//! does, once a tick: whatever [`due_at`] finds is proposed as the runtime.
//!
//! Only the leader proposes, so two nodes do not race to record the same
//! expiry; a refusal (someone acted first, or the leader changed between
//! reading and proposing) changes nothing and is only logged.

use std::time::Duration;

use aura_engine::ids::TenantId;
use aura_engine::machine::{Closing, CommandBody, EngineState};
use aura_engine::mission::{AbortReason, MissionState, StepTimeout};
use aura_engine::time::Timestamp;

use crate::app::App;

/// How often the leader looks for due timers.
pub const TICK: Duration = Duration::from_millis(500);

/// The commands that time passing makes due at `now`, in a stable order.
pub fn due_at(state: &EngineState, now: Timestamp) -> Vec<(TenantId, CommandBody)> {
    let mut due = Vec::new();
    for t in state.tenants() {
        for m in t.open_missions() {
            let id = m.id().clone();
            let deadline = m.boundary().get().runtime.deadline;
            let s = m.state();
            if m.run_is_full() {
                due.push((
                    t.id().clone(),
                    CommandBody::ContinueMission {
                        mission: id.clone(),
                    },
                ));
            }
            // A compensating mission closes when its saga ends, deadline
            // or not: undoing effects must not stop halfway.
            if m.execution().is_compensating() {
                continue;
            }
            if now >= deadline && AbortReason::TimedOut.may_leave(s) {
                due.push((
                    t.id().clone(),
                    CommandBody::CloseMission {
                        mission: id,
                        closing: Closing::Abort {
                            reason: AbortReason::TimedOut,
                            note: format!("the mission's timeout passed at {deadline}"),
                        },
                    },
                ));
                continue;
            }
            if let Some(lease) = m.execution().lease()
                && !lease.is_held_at(now)
            {
                due.push((
                    t.id().clone(),
                    CommandBody::ExpireLease {
                        mission: id.clone(),
                        epoch: lease.epoch,
                    },
                ));
            }
            for (hold, a) in m.open_approvals() {
                if now >= a.deadline {
                    due.push((
                        t.id().clone(),
                        CommandBody::ExpireApproval {
                            mission: id.clone(),
                            hold,
                        },
                    ));
                }
            }
            if matches!(s, MissionState::InProgress | MissionState::PendingExecution) {
                let step = m.execution().next_step();
                let held = m.execution().lease().is_some_and(|l| l.is_held_at(now));
                for timeout in [StepTimeout::StartToClose, StepTimeout::ScheduleToStart] {
                    // A lapsed lease expires first; the step's wait for
                    // a worker counts from then.
                    let applies = match timeout {
                        StepTimeout::StartToClose => held,
                        StepTimeout::ScheduleToStart => m.execution().lease().is_none(),
                    };
                    if applies
                        && !m.is_held(step)
                        && t.step_timeout_due(m, timeout).is_some_and(|due| now >= due)
                    {
                        due.push((
                            t.id().clone(),
                            CommandBody::TimeOutStep {
                                mission: id.clone(),
                                step,
                                timeout,
                                epoch: m.execution().epoch(),
                            },
                        ));
                    }
                }
            }
        }
    }
    due
}

/// Runs the timers until the task is dropped.
pub async fn run(app: App, tick: Duration) {
    super::on_leader_ticks(&app, tick, "timer", due_at).await;
}
