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

use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::network::{CallError, PeerClient};
use crate::node::ClusterError;
use crate::types::{Committed, NodeId, Proposal};

/// Forwarded requests to the leader that may be out at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// Commands gathered while every request is out.
pub const MAX_BATCH: usize = 256;

/// Bytes of commands in one request, kept well under the listener's
/// limit on a request however large the commands are.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

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
    proposal: Proposal,
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

    /// Has the leader write `proposal`, and returns where it was committed
    /// and what applying it gave.
    pub async fn forward(
        &self,
        leader: Leader,
        proposal: Proposal,
    ) -> Result<Committed, ClusterError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || ClusterError::Stopped("the forwarder has stopped".into());
        self.queue
            .send(Waiting {
                leader,
                proposal,
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
    // A proposal for another leader than the batch before it, queued
    // across a change of leader: it starts the next batch.
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(w) => w,
            None => match waiting.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        // A slot first, then whatever has queued meanwhile: while every
        // slot is busy, the batch grows.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(w) if w.leader == batch[0].leader => batch.push(w),
                Ok(w) => {
                    next = Some(w);
                    break;
                }
                Err(_) => break,
            }
        }
        let (client, stats) = (client.clone(), stats.clone());
        tokio::spawn(async move {
            send(&client, &stats, batch).await;
            drop(slot);
        });
    }
}

/// Sends one leader its batch and hands each proposal its answer. A
/// request that fails fails every proposal in it, as it would have
/// failed each alone.
async fn send(client: &PeerClient, stats: &ForwardStats, batch: Vec<Waiting>) {
    let leader = batch[0].leader.clone();
    let encoded: Vec<Vec<u8>> = batch
        .iter()
        .map(|w| serde_json::to_vec(&w.proposal).expect("proposals serialize"))
        .collect();
    let mut answers = Vec::with_capacity(batch.len());
    for part in requests(&encoded) {
        stats.requests.fetch_add(1, Relaxed);
        stats.commands.fetch_add(part.len() as u64, Relaxed);
        answers.extend(request(client, &leader, part).await);
    }
    for (w, answer) in batch.into_iter().zip(answers) {
        // The proposer may have given up waiting; nothing to tell then.
        let _ = w.answer.send(answer);
    }
}

/// `encoded` cut into consecutive requests of at most
/// [`MAX_REQUEST_BYTES`], save a single command larger than that, which
/// goes alone as it would have unbatched.
fn requests(encoded: &[Vec<u8>]) -> impl Iterator<Item = &[Vec<u8>]> {
    let mut rest = encoded;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let mut bytes = first.len();
        let mut n = 1;
        while let Some(next) = rest.get(n) {
            if bytes + next.len() + 1 > MAX_REQUEST_BYTES {
                break;
            }
            bytes += next.len() + 1;
            n += 1;
        }
        let (part, tail) = rest.split_at(n);
        rest = tail;
        Some(part)
    })
}

/// One request carrying `part`, answered command by command.
async fn request(
    client: &PeerClient,
    leader: &Leader,
    part: &[Vec<u8>],
) -> Vec<Result<Committed, ClusterError>> {
    let mut body = Vec::with_capacity(part.iter().map(|c| c.len() + 1).sum::<usize>() + 1);
    body.push(b'[');
    for (i, cmd) in part.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(cmd);
    }
    body.push(b']');
    let answered = client
        .post_bytes(Some(leader.id), &leader.addr, PATH, body, TIMEOUT)
        .instrument(tracing::debug_span!(
            "forward",
            leader = leader.id,
            commands = part.len()
        ))
        .await
        .and_then(|bytes| {
            serde_json::from_slice::<Vec<Result<Committed, ClusterError>>>(&bytes).map_err(|e| {
                CallError::Malformed {
                    addr: leader.addr.clone(),
                    reason: e.to_string(),
                }
            })
        });
    match answered {
        Ok(a) if a.len() == part.len() => a,
        // The leader applied some or all of them, but which answer is
        // whose cannot be told.
        Ok(_) => vec![Err(ClusterError::Unknown); part.len()],
        // Sent, but the answer was lost or unreadable: the leader may
        // have applied them. Retrying as if it had not would apply twice.
        Err(
            e @ (CallError::NoAnswer { .. }
            | CallError::Malformed { .. }
            | CallError::Unauthenticated { .. }),
        ) => {
            tracing::warn!(error = %e, "forwarded commands' outcome unknown");
            vec![Err(ClusterError::Unknown); part.len()]
        }
        Err(e) => vec![Err(ClusterError::LeaderUnreachable(e.to_string())); part.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_stay_under_the_byte_limit_and_keep_every_command_in_order() {
        let big = MAX_REQUEST_BYTES / 3;
        let sizes = [10, big, big, big, 10, MAX_REQUEST_BYTES + 5, 10, 10];
        let encoded: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8; n])
            .collect();
        let parts: Vec<&[Vec<u8>]> = requests(&encoded).collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        // Three thirds and their separators overflow: the third one waits
        // for the next request; the oversized command goes alone.
        assert_eq!(lens, [3, 2, 1, 2]);
        let flat: Vec<u8> = parts.iter().flat_map(|p| p.iter().map(|c| c[0])).collect();
        assert_eq!(flat, (0..sizes.len() as u8).collect::<Vec<_>>());
        for p in &parts {
            let bytes: usize = p.iter().map(|c| c.len() + 1).sum();
            assert!(p.len() == 1 || bytes <= MAX_REQUEST_BYTES);
        }
    }

    /// A leader at a fresh loopback address that reads one request and
    /// then, by `answer`, hangs up or writes those bytes.
    async fn leader_that(answer: Option<&'static [u8]>) -> Leader {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 64 * 1024];
            let _ = conn.read(&mut buf).await;
            if let Some(bytes) = answer {
                let _ = conn.write_all(bytes).await;
            }
        });
        Leader { id: 1, addr }
    }

    fn client() -> PeerClient {
        let secret = crate::auth::ClusterSecret::random();
        PeerClient::new(2, secret, crate::network::Faults::default())
    }

    #[tokio::test]
    async fn commands_the_leader_may_have_received_have_an_unknown_outcome() {
        let part = vec![b"{}".to_vec(), b"{}".to_vec()];
        let hung_up = request(&client(), &leader_that(None).await, &part).await;
        assert_eq!(hung_up, vec![Err(ClusterError::Unknown); 2]);
        let garbled = leader_that(Some(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n[1,2,",
        ));
        let garbled = request(&client(), &garbled.await, &part).await;
        assert_eq!(garbled, vec![Err(ClusterError::Unknown); 2]);
    }

    #[tokio::test]
    async fn commands_that_never_left_can_be_sent_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let part = vec![b"{}".to_vec()];
        let answer = request(&client(), &Leader { id: 1, addr }, &part).await;
        assert!(
            matches!(&answer[..], [Err(ClusterError::LeaderUnreachable(_))]),
            "{answer:?}"
        );
    }
}
