//! Signed checkpoints on a schedule. An audit chain proves nothing about
//! its newest entries until a checkpoint signs them, so the leader signs
//! one for each tenant whose chain has grown by `entries` since its last
//! checkpoint, or has any unsigned entry once `interval` has passed since
//! then. The checkpoint is a `SignCheckpoint` command like any other: it
//! is replicated, and the entry recording it is the last one it covers.

use std::time::Duration;

use aura_engine::ids::TenantId;
use aura_engine::machine::{CommandBody, EngineState};
use aura_engine::time::Timestamp;

use crate::app::App;

/// When a tenant's chain is due a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointSchedule {
    /// Sign once this many entries are unsigned.
    pub entries: u64,
    /// Sign any unsigned entries once this long has passed since the
    /// last checkpoint.
    pub interval: Duration,
}

impl Default for CheckpointSchedule {
    fn default() -> Self {
        CheckpointSchedule {
            entries: 1000,
            interval: Duration::from_secs(60),
        }
    }
}

/// The tenants whose chains are due a checkpoint at `now`.
pub fn due_at(state: &EngineState, schedule: CheckpointSchedule, now: Timestamp) -> Vec<TenantId> {
    let interval = i64::try_from(schedule.interval.as_millis()).unwrap_or(i64::MAX);
    state
        .tenants()
        .filter(|t| {
            let audit = t.audit();
            let last = audit.checkpoints().last();
            let unsigned = audit.len() - last.map_or(0, |cp| cp.size);
            unsigned > 0
                && (unsigned >= schedule.entries
                    || last.is_none_or(|cp| now.as_millis() - cp.time.as_millis() >= interval))
        })
        .map(|t| t.id().clone())
        .collect()
}

/// Signs due checkpoints until the task is dropped (on the leader only,
/// so that nodes do not sign the same chain twice).
pub async fn run(app: App, schedule: CheckpointSchedule) {
    let tick = schedule
        .interval
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    super::on_leader_ticks(&app, tick, "checkpoint", |s, now| {
        due_at(s, schedule, now)
            .into_iter()
            .map(|tenant| (tenant, CommandBody::SignCheckpoint))
            .collect()
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_engine::Actor;
    use aura_engine::machine::Command;
    use aura_engine::sim;

    #[test]
    fn chains_are_due_by_count_or_by_age() {
        // The simulated workload ends with a checkpoint of every chain.
        let mut state = sim::state_after(2, sim::WorkloadShape::default());
        let tenant = sim::tenant_id(0);
        let signed_at = state
            .tenant(&tenant)
            .unwrap()
            .audit()
            .checkpoints()
            .last()
            .unwrap()
            .time;
        let by_count = CheckpointSchedule {
            entries: 1,
            interval: Duration::from_secs(3600),
        };
        let by_age = CheckpointSchedule {
            entries: u64::MAX,
            interval: Duration::from_secs(3600),
        };
        let later = Timestamp(signed_at.0 + 7_200_000);
        assert!(due_at(&state, by_count, later).is_empty(), "all signed");

        // One more entry.
        state
            .apply(&Command {
                tenant: tenant.clone(),
                at: Timestamp(signed_at.0 + 1),
                actor: Actor::Platform,
                body: CommandBody::CreateNamespace {
                    namespace: "one-more".parse().unwrap(),
                    display_name: "One more".into(),
                },
                precondition: None,
            })
            .unwrap();
        let t = state.tenant(&tenant).unwrap().audit();
        assert_eq!(t.len(), t.checkpoints().last().unwrap().size + 1);
        assert_eq!(
            due_at(&state, by_count, Timestamp(signed_at.0 + 2)),
            std::slice::from_ref(&tenant)
        );
        assert!(due_at(&state, by_age, Timestamp(signed_at.0 + 2)).is_empty());
        assert_eq!(due_at(&state, by_age, later), [tenant]);
    }
}
