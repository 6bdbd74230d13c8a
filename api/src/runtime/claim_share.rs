//! Which node's built-in executor claims a queued mission first.
//!
//! Every node's executor sees the same queue. Without a rule they all
//! claim its head at once: one claim wins and the others are refused, and
//! each refusal is still a full Raft round, applied on every node and
//! audited (about half a refused claim per mission on three nodes). So
//! each queued mission is first offered to one voter, picked by a hash of
//! its id. The others may take it once it has waited [`GRACE_MS`], and
//! only with capacity their own share leaves free: a node that is down,
//! or runs no executor, holds its share up for little longer than that,
//! and under a backlog, when every queued mission has waited that long,
//! each node still works through its own share first. External workers
//! are not concerned; they claim whatever the queue gives them.

use aura_engine::ids::MissionId;
use aura_engine::mission::{Mission, MissionState};
use aura_engine::time::Timestamp;
use aura_raft::NodeId;

use crate::app::Engine;

/// How long a queued mission waits for the node it is offered to before
/// any node's executor may claim it.
pub const GRACE_MS: i64 = 1_000;

/// This node and the voters it shares the queue with, read once per scan.
#[derive(Debug, Clone)]
pub struct ClaimShare {
    me: NodeId,
    /// Sorted, so that every node picks the same one.
    voters: Vec<NodeId>,
}

impl ClaimShare {
    pub fn of(engine: &dyn Engine) -> ClaimShare {
        let (me, voters) = engine.voters();
        ClaimShare { me, voters }
    }

    /// The voter a queued mission is offered to first.
    pub fn offered_to(&self, mission: &MissionId) -> Option<NodeId> {
        let n = u64::try_from(self.voters.len()).ok().filter(|n| *n > 0)?;
        let i = usize::try_from(fnv1a(mission.as_str().as_bytes()) % n).ok()?;
        self.voters.get(i).copied()
    }

    /// Whose turn it is to claim `m` at `now`. Only queued missions are
    /// shared out; one whose worker lost its lease is taken by whoever
    /// sees it first.
    pub fn turn(&self, m: &Mission, now: Timestamp) -> Turn {
        if m.state() != MissionState::PendingExecution
            || self.offered_to(m.id()).is_none_or(|n| n == self.me)
        {
            return Turn::Mine;
        }
        let queued_at = m.timeline().last().map_or(0, |c| c.at.as_millis());
        if now.as_millis().saturating_sub(queued_at) >= GRACE_MS {
            Turn::Spare
        } else {
            Turn::Theirs
        }
    }
}

/// What [`ClaimShare::turn`] says of one mission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Offered to this node, or not shared out.
    Mine,
    /// Offered to another node, which has not claimed it within the grace
    /// period: this node may take it with capacity its own leave free.
    Spare,
    /// Offered to another node, still within the grace period.
    Theirs,
}

/// FNV-1a: stable on every node and release, and cheap enough to run on
/// every queued mission at every scan.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(me: NodeId, voters: &[NodeId]) -> ClaimShare {
        ClaimShare {
            me,
            voters: voters.to_vec(),
        }
    }

    #[test]
    fn every_node_offers_a_mission_to_the_same_voter() {
        let id: MissionId = "m-42".parse().unwrap();
        let picks: Vec<_> = (1..=3)
            .map(|me| share(me, &[1, 2, 3]).offered_to(&id))
            .collect();
        assert!(picks.iter().all(|p| *p == picks[0] && p.is_some()));
    }

    #[test]
    fn the_queue_is_shared_out_roughly_evenly() {
        let s = share(1, &[1, 2, 3]);
        let mut counts = [0u32; 3];
        for i in 0..3_000 {
            let id: MissionId = format!("m-{i}").parse().unwrap();
            counts[(s.offered_to(&id).unwrap() - 1) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (800..1_200).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_lone_node_is_offered_everything() {
        let id: MissionId = "m-1".parse().unwrap();
        assert_eq!(share(7, &[7]).offered_to(&id), Some(7));
        assert_eq!(share(7, &[]).offered_to(&id), None);
    }
}
