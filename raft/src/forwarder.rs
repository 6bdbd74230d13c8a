//! Proposals a follower forwards to the leader, sent together.
//!
//! Only the leader appends to the log, so a command proposed on a
//! follower crosses to the leader and back. Sent one by one, every
//! forwarded command cost an HTTP exchange of its own on both nodes,
//! while a busy follower has many proposals in flight at once (its
//! executor runs dozens of missions, its API serves many clients). The
//! forwarder sends the proposals waiting at a moment as one request,
//! which the leader hands to Raft as one batch of entries: each command
//! is still its own entry with its own answer.
//!
//! No proposal waits for company. One that arrives while fewer than
//! [`MAX_IN_FLIGHT`] requests are out leaves at once; only while all of
//! them are out do the next proposals gather, up to [`MAX_BATCH`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use aura_engine::machine::Command;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::network::{CallError, PeerClient};
use crate::node::ClusterError;
use crate::types::{Committed, NodeId};

/// Forwarded requests to the leader that may be out at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// Commands in one forwarded request.
pub const MAX_BATCH: usize = 256;

/// The leader's route for a batch of forwarded commands.
pub(crate) const PATH: &str = "/cluster/propose-batch";

const TIMEOUT: Duration = Duration::from_secs(30);

/// Where a forwarded command goes: the leader's id and cluster address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leader {
    pub id: NodeId,
    pub addr: String,
}

struct Waiting {
    leader: Leader,
    cmd: Command,
    answer: oneshot::Sender<Result<Committed, ClusterError>>,
}

/// What a node has forwarded since it started.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Requests sent to a leader.
    pub requests: AtomicU64,
    /// Commands they carried.
    pub commands: AtomicU64,
}

/// The handle proposals are forwarded through. The task behind it ends
/// when the handle is dropped.
#[derive(Debug)]
pub(crate) struct Forwarder {
    queue: mpsc::UnboundedSender<Waiting>,
    stats: Arc<ForwardStats>,
}

impl Forwarder {
    pub fn start(client: PeerClient) -> Forwarder {
        let (queue, waiting) = mpsc::unbounded_channel();
        let stats = Arc::new(ForwardStats::default());
        tokio::spawn(run(client, waiting, stats.clone()));
        Forwarder { queue, stats }
    }

    pub fn stats(&self) -> &ForwardStats {
        &self.stats
    }

    /// Has the leader write `cmd`, and returns where it was committed and
    /// what applying it gave.
    pub async fn forward(&self, leader: Leader, cmd: Command) -> Result<Committed, ClusterError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || ClusterError::Stopped("the forwarder has stopped".into());
        self.queue
            .send(Waiting {
                leader,
                cmd,
                answer,
            })
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn run(
    client: PeerClient,
    mut waiting: mpsc::UnboundedReceiver<Waiting>,
    stats: Arc<ForwardStats>,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = waiting.recv().await {
        // A slot first, then whatever has queued meanwhile: while every
        // slot is busy, the batch grows.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        // Proposals queued across a change of leader name different
        // leaders; each leader gets its own request.
        let mut slot = Some(slot);
        for group in by_leader(batch) {
            let slot = match slot.take() {
                Some(s) => s,
                None => match slots.clone().acquire_owned().await {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
            stats.requests.fetch_add(1, Relaxed);
            stats.commands.fetch_add(group.len() as u64, Relaxed);
            let client = client.clone();
            tokio::spawn(async move {
                send(&client, group).await;
                drop(slot);
            });
        }
    }
}

/// `batch` split by leader, in the order each leader first appears.
fn by_leader(batch: Vec<Waiting>) -> Vec<Vec<Waiting>> {
    let mut groups: Vec<Vec<Waiting>> = Vec::new();
    for w in batch {
        match groups.iter_mut().find(|g| g[0].leader == w.leader) {
            Some(g) => g.push(w),
            None => groups.push(vec![w]),
        }
    }
    groups
}

/// Sends one leader its batch and hands each proposal its answer. A
/// request that fails fails every proposal in it, as it would have
/// failed each alone.
async fn send(client: &PeerClient, batch: Vec<Waiting>) {
    let leader = batch[0].leader.clone();
    let cmds: Vec<&Command> = batch.iter().map(|w| &w.cmd).collect();
    let answers: Result<Vec<Result<Committed, ClusterError>>, CallError> = client
        .post_json(Some(leader.id), &leader.addr, PATH, &cmds, TIMEOUT)
        .await;
    let answers = match answers {
        Ok(a) if a.len() == batch.len() => a,
        // The leader applied some or all of them, but which answer is
        // whose cannot be told.
        Ok(_) => vec![Err(ClusterError::Unknown); batch.len()],
        Err(e) => vec![Err(ClusterError::LeaderUnreachable(e.to_string())); batch.len()],
    };
    for (w, answer) in batch.into_iter().zip(answers) {
        // The proposer may have given up waiting; nothing to tell then.
        let _ = w.answer.send(answer);
    }
}
