//! A running node: storage, Raft, the cluster listener, and the client path
//! the rest of AURA uses (propose a command, read the state).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aura_engine::Digest;
use aura_engine::machine::{Command, EngineState};
use futures_util::StreamExt;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ReadPolicy, ServerState};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::ClusterSecret;
use crate::config::{Bootstrap, ConfigError, NodeConfig};
use crate::forwarder::{Forwarder, Leader};
use crate::log_file::LogFileError;
use crate::log_format::{LogFormat, LogFormats};
use crate::log_store::LogStore;
use crate::network::{CallError, Faults, HttpNetwork, PeerClient};
use crate::state_machine::{EngineStore, FeedItem};
use crate::types::{
    Applied, AuraRaft, Committed, NodeId, NodeInfo, Proposal, Raft, SequenceApplied,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogFileError),
    #[error("state machine in {dir}: {source}")]
    StateMachine {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("raft failed to start: {0}")]
    Raft(String),
}

/// How long a proposal waits for a leader to be elected before giving up.
const LEADER_WAIT: Duration = Duration::from_secs(5);

/// How long a follower waits to apply a write it forwarded before it
/// answers [`ClusterError::CommittedNotApplied`].
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// How far ahead of the writing node's clock a command may be stamped.
/// A command's time is the proposing node's, and a tenant's clock never
/// goes back: without this bound one node with a fast clock would move a
/// tenant's time forward for good, and its tokens, approvals and leases
/// would expire early on every node.
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(5);

/// The refusal of a proposal stamped further ahead of this node's clock
/// than [`MAX_CLOCK_AHEAD`], if it is.
fn stamped_ahead(proposal: &Proposal) -> Option<ClusterError> {
    let latest = proposal.commands().iter().map(|c| c.at.as_millis()).max()?;
    let ahead_ms = latest.saturating_sub(crate::auth::now_ms());
    (ahead_ms > MAX_CLOCK_AHEAD.as_millis() as i64).then_some(ClusterError::ClockAhead { ahead_ms })
}

/// Why a proposal, read or membership change did not happen.
#[derive(Debug, thiserror::Error, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub enum ClusterError {
    #[error("no leader is known right now; retry shortly")]
    NoLeader,
    #[error("the leader could not be reached: {0}")]
    LeaderUnreachable(String),
    #[error(
        "the command's outcome is unknown (leadership changed, or the leader's answer was lost, \
         while it was in flight); it may or may not have been applied"
    )]
    Unknown,
    #[error("not enough members answer to confirm leadership")]
    NoQuorum,
    #[error("this node has stopped: {0}")]
    Stopped(String),
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("timed out waiting for this node to catch up")]
    CatchUpTimeout,
    #[error(
        "the write was committed (log index {index}) but this node has not applied it within {}s; \
         it is durable, so do not repeat it: read its result again shortly, or from another node",
        CATCH_UP_WAIT.as_secs()
    )]
    CommittedNotApplied { index: u64 },
    #[error("node {0} is not a member of the cluster")]
    UnknownNode(NodeId),
    #[error("a sequence of commands cannot be empty")]
    EmptySequence,
    #[error(
        "the command is stamped {ahead_ms} ms ahead of the clock of the node that writes it (at \
         most {} s are allowed): the proposing node's clock is wrong",
        MAX_CLOCK_AHEAD.as_secs()
    )]
    ClockAhead { ahead_ms: i64 },
    #[error(
        "the first {applied} commands of the sequence were applied and the rest were not, because {cause}"
    )]
    PartlyApplied {
        applied: usize,
        cause: Box<ClusterError>,
    },
}

impl ClusterError {
    /// Whether the command may have been applied despite the error: a
    /// caller must not run it again as if it had not (see
    /// `docs/replication.md`).
    pub fn may_have_applied(&self) -> bool {
        matches!(
            self,
            ClusterError::Unknown
                | ClusterError::CommittedNotApplied { .. }
                | ClusterError::PartlyApplied { .. }
        )
    }
}

/// What a write Raft refused means to its proposer: `NoLeader` (with the
/// leader, when known) for a refusal before the entry reached any log,
/// which is safe to retry; otherwise the outcome is unknown.
fn write_refusal(e: ClientWriteError<AuraRaft>) -> (ClusterError, Option<(NodeId, NodeInfo)>) {
    match e {
        ClientWriteError::ForwardToLeader(f) => {
            (ClusterError::NoLeader, f.leader_id.zip(f.leader_node))
        }
        e => {
            tracing::warn!(error = %e, "proposal outcome unknown");
            (ClusterError::Unknown, None)
        }
    }
}

/// A sequence's commands written as entries of their own, one after the
/// other up to the first refused, with the last one's log index: what a
/// node does while not every member reads sequences ([`crate::log_format`]).
/// The answer is the sequence's. Unlike a sequence, a failure part way
/// leaves the commands before it committed, as with any separate
/// proposals: the error then says so ([`ClusterError::PartlyApplied`]),
/// so that no caller takes the sequence for one that never happened.
async fn one_by_one<F, Fut>(
    cmds: Vec<Command>,
    mut write: F,
) -> Result<(Applied, u64), ClusterError>
where
    F: FnMut(Command) -> Fut,
    Fut: std::future::Future<Output = Result<(Applied, u64), ClusterError>>,
{
    let mut done = SequenceApplied::default();
    let mut last = 0;
    for cmd in cmds {
        let (applied, index) = match write(cmd).await {
            Ok(written) => written,
            Err(cause) if done.events.is_empty() => return Err(cause),
            Err(cause) => {
                return Err(ClusterError::PartlyApplied {
                    applied: done.events.len(),
                    cause: Box::new(cause),
                });
            }
        };
        last = index;
        if let Some(one) = applied.into_sequence() {
            done.events.extend(one.events);
            if one.refused.is_some() {
                done.refused = one.refused;
                break;
            }
        }
    }
    Ok((Applied::Sequence(done), last))
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Reflects every write acknowledged before the read started: the
    /// leader confirms its leadership with a quorum (read index), and this
    /// node waits until it has applied that far.
    Linearizable,
    /// Whatever this node has applied; may lag behind the leader.
    Stale,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl Role {
    fn of(state: ServerState) -> Role {
        match state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

/// See [`Node::progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub addr: String,
    pub region: String,
    pub voter: bool,
    /// Last log index known replicated to it (leader's view only).
    pub matched: Option<u64>,
    /// Entries it is behind the leader's last log (leader's view only).
    pub lag: Option<u64>,
}

/// One node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node: NodeId,
    pub region: String,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub leader_addr: Option<String>,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot: Option<u64>,
    pub purged: Option<u64>,
    pub members: Vec<MemberStatus>,
    pub state_digest: Digest,
    /// The log entry format this node writes now (1 or 2; see
    /// [`crate::log_format`]); 0 from a version that does not say.
    #[serde(default)]
    pub log_format: u8,
}

struct Inner {
    id: NodeId,
    info: NodeInfo,
    raft: Raft,
    store: EngineStore,
    log: LogStore,
    client: PeerClient,
    forwarder: Forwarder,
    formats: Arc<LogFormats>,
    local_addr: SocketAddr,
    secret: ClusterSecret,
    kek: aura_engine::identity::Kek,
    stop: watch::Sender<bool>,
}

/// A running AURA engine node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("addr", &self.inner.local_addr)
            .finish()
    }
}

impl Node {
    /// Starts a node. Configuration is checked and the listener bound
    /// before anything in the data dir is created or changed.
    pub async fn start(mut cfg: NodeConfig) -> Result<Node, StartError> {
        cfg.validate()?;
        let listener =
            TcpListener::bind(cfg.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: cfg.listen,
            source,
        })?;
        // Port 0 means "any": peers must then be told the real port.
        if cfg.listen.port() == 0 && cfg.advertise.ends_with(":0") {
            cfg.advertise = local_addr.to_string();
        }
        cfg.claim_data_dir()?;
        let dir = cfg.raft_dir();
        let (log, report) = LogStore::open(&dir)?;
        if report.cut_bytes > 0 {
            tracing::warn!(
                bytes = report.cut_bytes,
                "raft log had a torn tail from a crash; cut it"
            );
        }
        let store = EngineStore::open(&dir, cfg.log_format, cfg.kek.clone()).map_err(|source| {
            StartError::StateMachine {
                dir: dir.display().to_string(),
                source,
            }
        })?;
        let formats = Arc::new(LogFormats::new(cfg.log_format));
        let client = PeerClient::for_node(
            cfg.id,
            cfg.secret.clone(),
            Faults::default(),
            formats.clone(),
        );
        let raft_config = cfg
            .raft_config()
            .validate()
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let raft = Raft::new(
            cfg.id,
            Arc::new(raft_config),
            HttpNetwork::new(client.clone()),
            log.clone(),
            store.clone(),
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(crate::snapshot_schedule::run(
            cfg.snapshot_schedule(),
            raft.clone(),
            log.clone(),
            store.clone(),
            stopped.clone(),
        ));
        let node = Node {
            inner: Arc::new(Inner {
                id: cfg.id,
                info: NodeInfo {
                    addr: cfg.advertise.clone(),
                    region: cfg.region.clone(),
                },
                raft,
                store,
                log,
                forwarder: Forwarder::start(client.clone()),
                client,
                formats,
                local_addr,
                secret: cfg.secret.clone(),
                kek: cfg.kek.clone(),
                stop,
            }),
        };
        let app = crate::service::router(node.clone(), cfg.secret.clone());
        let mut stopped_rx = stopped.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped_rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "cluster listener failed");
            }
        });
        node.bootstrap(&cfg.bootstrap, stopped).await?;
        tracing::info!(node = cfg.id, addr = %local_addr, region = %cfg.region, "node started");
        Ok(node)
    }

    async fn bootstrap(
        &self,
        how: &Bootstrap,
        stopped: watch::Receiver<bool>,
    ) -> Result<(), StartError> {
        let raft = &self.inner.raft;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        match how {
            Bootstrap::Form(members) => {
                let members = if members.is_empty() {
                    BTreeMap::from([(self.inner.id, self.inner.info.clone())])
                } else {
                    members.clone()
                };
                // Only the lowest id initializes; the others learn the
                // membership from it. Two initializers could elect two
                // leaders of different first terms.
                if members.keys().next() == Some(&self.inner.id) {
                    raft.initialize(members)
                        .await
                        .map_err(|e| StartError::Raft(e.to_string()))?;
                }
            }
            Bootstrap::Join(addr) => {
                let node = self.clone();
                let addr = addr.clone();
                tokio::spawn(async move { node.join(addr, stopped).await });
            }
        }
        Ok(())
    }

    /// Asks the cluster at `addr` to add this node as a learner, retrying
    /// until it says yes or the node stops.
    async fn join(&self, addr: String, mut stopped: watch::Receiver<bool>) {
        let req = AddLearner {
            id: self.inner.id,
            addr: self.inner.info.addr.clone(),
            region: self.inner.info.region.clone(),
        };
        loop {
            let r: Result<Result<(), ClusterError>, CallError> = self
                .inner
                .client
                .post_json(
                    None,
                    &addr,
                    "/cluster/learners",
                    &req,
                    Duration::from_secs(30),
                )
                .await;
            match r {
                Ok(Ok(())) => {
                    tracing::info!(via = %addr, "joined the cluster as a learner");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(via = %addr, error = %e, "join refused; retrying"),
                Err(e) => tracing::warn!(via = %addr, error = %e, "join failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Where the cluster listener actually listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// A key every member of the cluster derives alike from the cluster
    /// secret, one per `purpose` (see [`ClusterSecret::derive`]).
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.inner.secret.derive(purpose)
    }

    /// The cluster's key-encryption key, which seals tenant signing keys
    /// before they are proposed.
    pub fn kek(&self) -> &aura_engine::identity::Kek {
        &self.inner.kek
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub fn faults(&self) -> &Faults {
        self.inner.client.faults()
    }

    pub fn log(&self) -> &LogStore {
        &self.inner.log
    }

    pub fn digest(&self) -> Digest {
        self.inner.store.digest()
    }

    /// The snapshots this node has built since it started.
    pub fn snapshot_stats(&self) -> &crate::state_machine::SnapshotStats {
        self.inner.store.snapshot_stats()
    }

    /// What this node has forwarded to a leader since it started.
    pub fn forward_stats(&self) -> &crate::forwarder::ForwardStats {
        self.inner.forwarder.stats()
    }

    /// What this node has applied since it started.
    pub fn applied_stats(&self) -> &crate::state_machine::AppliedStats {
        self.inner.store.stats()
    }

    fn leader(&self) -> Option<(NodeId, NodeInfo)> {
        let m = self.inner.raft.metrics().borrow_watched().clone();
        let id = m.current_leader?;
        let info = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, info))
    }

    /// Proposes a command and returns what applying it produced, once it is
    /// committed and applied — on this node too: from a follower the
    /// command is forwarded to the leader, and the answer waits until this
    /// node has applied it, so that a caller reading this node's state
    /// right after sees its own write.
    #[tracing::instrument(skip_all, fields(kind = cmd.body.kind(), tenant = %cmd.tenant))]
    pub async fn propose(&self, cmd: Command) -> Result<Applied, ClusterError> {
        self.propose_entry(Proposal::new(cmd)).await
    }

    /// Proposes commands as one log entry, applied back to back: what each
    /// produced, up to the first one refused (see [`Proposal`]). Like
    /// [`Node::propose`] otherwise. A sequence of one command is
    /// proposed as that command, and answered as it would be
    /// ([`Applied::into_sequence`] reads every answer as a sequence's).
    /// While not every member reads sequences ([`Node::log_format`]), the
    /// commands are written one entry each, with the same answer.
    #[tracing::instrument(skip_all, fields(commands = cmds.len()))]
    pub async fn propose_sequence(&self, cmds: Vec<Command>) -> Result<Applied, ClusterError> {
        if cmds.len() > 1 && self.log_format() < LogFormat::Sequences {
            let written = one_by_one(cmds, |cmd| async { Ok((self.propose(cmd).await?, 0)) });
            return written.await.map(|(applied, _)| applied);
        }
        let proposal = Proposal::sequence(cmds).map_err(|_| ClusterError::EmptySequence)?;
        self.propose_entry(proposal).await
    }

    /// The log entry format this node writes now: the one it computes
    /// while it leads, else the one its leader announced.
    pub fn log_format(&self) -> LogFormat {
        let leading =
            self.inner.raft.metrics().borrow_watched().current_leader == Some(self.inner.id);
        if leading {
            self.inner.formats.leading()
        } else {
            self.inner.formats.announced()
        }
    }

    /// The newest format this node says it reads ([`NodeConfig::log_format`]).
    pub fn advertised_log_format(&self) -> LogFormat {
        self.inner.formats.own()
    }

    pub(crate) fn formats(&self) -> &LogFormats {
        &self.inner.formats
    }

    async fn propose_entry(&self, proposal: Proposal) -> Result<Applied, ClusterError> {
        // Retried only while no node has appended it: `NoLeader` comes from
        // a refusal before the entry reached any log, so retrying cannot
        // apply the command twice.
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            // The commands are shared by every attempt, here or
            // forwarded, and by the log entry.
            let r = match self.write_here(proposal.clone()).await {
                Ok(c) => Ok(c.applied),
                Err((_, Some((id, leader)))) => {
                    let leader = Leader {
                        id,
                        addr: leader.addr,
                    };
                    match self.inner.forwarder.forward(leader, proposal.clone()).await {
                        Ok(c) => self.catch_up_to(c.index).await.map(|()| c.applied),
                        Err(e) => Err(e),
                    }
                }
                Err((e, None)) => Err(e),
            };
            match r {
                Err(ClusterError::NoLeader) if tokio::time::Instant::now() < deadline => {
                    self.wait_for_leader(deadline).await;
                }
                r => return r,
            }
        }
    }

    /// Waits until this node has applied the log up to `index`, where the
    /// leader committed a write forwarded from here. The write is committed
    /// whatever happens here, but the caller reads this node's state next
    /// (an API handler builds its answer from it): a node that has not
    /// caught up within [`CATCH_UP_WAIT`] says the write is committed
    /// rather than answer from a state without it (a created mission
    /// would read as missing, and be created again).
    async fn catch_up_to(&self, index: u64) -> Result<(), ClusterError> {
        self.inner
            .raft
            .wait(Some(CATCH_UP_WAIT))
            .applied_index_at_least(Some(index), "a forwarded write")
            .await
            .map(|_| ())
            .map_err(|_| {
                tracing::warn!(index, "a forwarded write is committed but not applied here");
                ClusterError::CommittedNotApplied { index }
            })
    }

    async fn wait_for_leader(&self, deadline: tokio::time::Instant) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = self
            .inner
            .raft
            .wait(Some(left))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await;
        // The leader may have been known but stepped down; do not spin.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// Proposes on this node only: the listener's answer to a single
    /// forwarded proposal, which this version's nodes no longer send (they
    /// batch, see [`Node::propose_here_all`]) but a node of the previous
    /// version still does during a rolling upgrade.
    pub(crate) async fn propose_here(&self, cmd: Command) -> Result<Committed, ClusterError> {
        self.write_here(Proposal::new(cmd))
            .await
            .map_err(|(e, _)| e)
    }

    /// Proposes forwarded proposals on this node only, as one batch of
    /// entries: the listener's side of the [`Forwarder`]. Each proposal has
    /// its own entry and its own answer, in order.
    pub(crate) async fn propose_here_all(
        &self,
        proposals: Vec<Proposal>,
    ) -> Vec<Result<Committed, ClusterError>> {
        // A follower chose sequences from this node's last announcement,
        // which a member running an older version may have overtaken.
        if proposals.iter().any(|p| matches!(p, Proposal::Sequence(_)))
            && self.inner.formats.leading() < LogFormat::Sequences
        {
            let mut answers = Vec::with_capacity(proposals.len());
            for p in proposals {
                answers.push(self.write_here_in_format(p).await);
            }
            return answers;
        }
        // Proposals stamped too far ahead of this node's clock are
        // answered at once; the rest are written together.
        let refusals: Vec<Option<ClusterError>> = proposals.iter().map(stamped_ahead).collect();
        let proposals: Vec<Proposal> = proposals
            .into_iter()
            .zip(&refusals)
            .filter(|(_, refused)| refused.is_none())
            .map(|(p, _)| p)
            .collect();
        let n = proposals.len();
        let written = match self.inner.raft.client_write_many(proposals).await {
            Ok(stream) => stream.collect::<Vec<_>>().await,
            Err(e) => {
                let stopped = ClusterError::Stopped(e.to_string());
                return refusals
                    .into_iter()
                    .map(|refused| Err(refused.unwrap_or_else(|| stopped.clone())))
                    .collect();
            }
        };
        let mut answers: Vec<_> = written
            .into_iter()
            .map(|r| match r {
                Ok(Ok(w)) => Ok(Committed {
                    index: w.log_id.index(),
                    applied: w.response,
                }),
                Ok(Err(e)) => Err(write_refusal(e).0),
                Err(e) => Err(ClusterError::Stopped(e.to_string())),
            })
            .collect();
        // The stream ends early only when Raft stops.
        answers.resize(n, Err(ClusterError::Stopped("raft stopped".into())));
        let mut answers = answers.into_iter();
        refusals
            .into_iter()
            .map(|refused| match refused {
                Some(e) => Err(e),
                None => answers
                    .next()
                    .unwrap_or(Err(ClusterError::Stopped("raft stopped".into()))),
            })
            .collect()
    }

    /// A forwarded proposal written here, a sequence as separate entries.
    async fn write_here_in_format(&self, proposal: Proposal) -> Result<Committed, ClusterError> {
        let Proposal::Sequence(cmds) = proposal else {
            return self.write_here(proposal).await.map_err(|(e, _)| e);
        };
        let written = one_by_one(cmds.to_vec(), |cmd| async {
            let c = self
                .write_here(Proposal::new(cmd))
                .await
                .map_err(|(e, _)| e)?;
            Ok((c.applied, c.index))
        });
        let (applied, index) = written.await?;
        Ok(Committed { index, applied })
    }

    /// Writes through this node's Raft. A refusal because another node
    /// leads is `NoLeader`, with that leader when it is known.
    #[allow(clippy::type_complexity)]
    async fn write_here(
        &self,
        proposal: Proposal,
    ) -> Result<Committed, (ClusterError, Option<(NodeId, NodeInfo)>)> {
        if let Some(refused) = stamped_ahead(&proposal) {
            return Err((refused, None));
        }
        match self.inner.raft.client_write(proposal).await {
            Ok(r) => Ok(Committed {
                index: r.log_id.index(),
                applied: r.data,
            }),
            Err(RaftError::APIError(e)) => Err(write_refusal(e)),
            Err(RaftError::Fatal(e)) => Err((ClusterError::Stopped(e.to_string()), None)),
        }
    }

    async fn forward<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        leader: NodeId,
        addr: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ClusterError> {
        let r: Result<Resp, ClusterError> = self
            .inner
            .client
            .post_json(Some(leader), addr, path, req, Duration::from_secs(30))
            .await
            .map_err(|e| ClusterError::LeaderUnreachable(e.to_string()))?;
        r
    }

    /// The leader's read index: the log position a linearizable read must
    /// see. Confirms leadership with a quorum first.
    pub(crate) async fn read_index_here(&self) -> Result<u64, ClusterError> {
        match self.inner.raft.get_read_log_id(ReadPolicy::ReadIndex).await {
            Ok((read, _)) => Ok(read.index()),
            Err(RaftError::APIError(openraft::error::LinearizableReadError::ForwardToLeader(
                _,
            ))) => Err(ClusterError::NoLeader),
            Err(RaftError::APIError(_)) => Err(ClusterError::NoQuorum),
            Err(RaftError::Fatal(e)) => Err(ClusterError::Stopped(e.to_string())),
        }
    }

    /// Live events of every command this node applies from now on, for
    /// every tenant; callers filter.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<FeedItem>> {
        self.inner.store.subscribe()
    }

    /// Reads this node's applied state now, without waiting: a stale read,
    /// for metrics and diagnostics.
    pub fn read_local<R>(&self, f: impl FnOnce(&EngineState) -> R) -> R {
        self.inner.store.read(f)
    }

    /// Reads the engine state at the requested consistency.
    pub async fn read<R>(
        &self,
        consistency: Consistency,
        f: impl FnOnce(&EngineState) -> R,
    ) -> Result<R, ClusterError> {
        if consistency == Consistency::Linearizable {
            let index = match self.read_index_here().await {
                Err(ClusterError::NoLeader) => {
                    let (id, leader) = self.leader().ok_or(ClusterError::NoLeader)?;
                    self.forward(id, &leader.addr, "/cluster/read-index", &())
                        .await?
                }
                other => other?,
            };
            self.inner
                .raft
                .wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(Some(index), "linearizable read")
                .await
                .map_err(|_| ClusterError::CatchUpTimeout)?;
        }
        Ok(self.inner.store.read(f))
    }

    /// Role, term and log positions, read from Raft's metrics alone: what
    /// readiness probes, metrics and waits need. Unlike [`Node::status`] it
    /// does not hash the engine state.
    pub fn progress(&self) -> Progress {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        Progress {
            role: Role::of(m.state),
            term: m.current_term,
            leader: m.current_leader,
            committed: m.local_committed.map(|l| l.index),
            applied: m.last_applied.map(|l| l.index),
        }
    }

    /// This node's view of the cluster, with the digest of its state.
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus {
            state_digest: self.inner.store.digest(),
            ..self.membership()
        }
    }

    /// [`Node::status`] without hashing the engine state: what API
    /// callers asking for members and leader need. `state_digest` is zero.
    pub fn membership(&self) -> ClusterStatus {
        let log_format = self.log_format().level();
        let m = self.inner.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last = m.last_log_index;
        let members = membership
            .nodes()
            .map(|(id, info)| {
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id))
                    .map(|l| l.as_ref().map_or(0, |l| l.index));
                MemberStatus {
                    id: *id,
                    addr: info.addr.clone(),
                    region: info.region.clone(),
                    voter: voters.contains(id),
                    matched,
                    lag: matched.map(|x| last.unwrap_or(0).saturating_sub(x)),
                }
            })
            .collect();
        let role = Role::of(m.state);
        ClusterStatus {
            node: self.inner.id,
            region: self.inner.info.region.clone(),
            role,
            term: m.current_term,
            leader: m.current_leader,
            leader_addr: m
                .current_leader
                .and_then(|l| membership.get_node(&l).map(|n| n.addr.clone())),
            last_log_index: last,
            committed: m.local_committed.map(|l| l.index),
            applied: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
            members,
            state_digest: Digest([0; 32]),
            log_format,
        }
    }

    /// Runs a membership change on the leader, forwarding if needed.
    pub async fn change(&self, change: MembershipChange) -> Result<(), ClusterError> {
        if !self.inner.raft.is_leader() {
            let (id, leader) = self.leader().ok_or(ClusterError::NoLeader)?;
            return self
                .forward(id, &leader.addr, "/cluster/membership", &change)
                .await;
        }
        self.change_here(change).await
    }

    pub(crate) async fn change_here(&self, change: MembershipChange) -> Result<(), ClusterError> {
        let raft = &self.inner.raft;
        let refused = |e: RaftError<_, ClientWriteError<_>>| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ClusterError::NoLeader,
            RaftError::APIError(e) => ClusterError::Membership(e.to_string()),
            RaftError::Fatal(e) => ClusterError::Stopped(e.to_string()),
        };
        let known = |id: NodeId| {
            raft.metrics()
                .borrow_watched()
                .membership_config
                .membership()
                .get_node(&id)
                .is_some()
        };
        match change {
            MembershipChange::AddLearner(req) => {
                if req.id == 0 {
                    return Err(ClusterError::Membership(
                        "node id must be at least 1".into(),
                    ));
                }
                if !crate::config::valid_addr(&req.addr) {
                    return Err(ClusterError::Membership(format!(
                        "address `{}` is not host:port",
                        req.addr
                    )));
                }
                if !crate::config::valid_region(&req.region) {
                    return Err(ClusterError::Membership(format!(
                        "region label `{}` is not valid: use 1-63 letters, digits, `-` or `_`",
                        req.region
                    )));
                }
                // Blocking: returns once the learner has caught up, which
                // for a far-behind node means after a snapshot transfer.
                raft.add_learner(
                    req.id,
                    NodeInfo {
                        addr: req.addr,
                        region: req.region,
                    },
                    true,
                )
                .await
                .map_err(refused)?;
            }
            MembershipChange::Promote(id) => {
                if !known(id) {
                    return Err(ClusterError::UnknownNode(id));
                }
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true)
                    .await
                    .map_err(refused)?;
            }
            MembershipChange::Remove(id) => {
                if !known(id) {
                    return Err(ClusterError::UnknownNode(id));
                }
                let voters: BTreeSet<NodeId> = raft.voter_ids().collect();
                let change = if voters.contains(&id) {
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                raft.change_membership(change, false)
                    .await
                    .map_err(refused)?;
            }
            MembershipChange::TransferLeader(id) => {
                let voters: BTreeSet<NodeId> = raft.voter_ids().collect();
                if !voters.contains(&id) {
                    return Err(ClusterError::UnknownNode(id));
                }
                raft.trigger()
                    .transfer_leader(id)
                    .await
                    .map_err(|e| ClusterError::Stopped(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Stops Raft and the listener and makes every queued log write
    /// durable.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        if let Err(e) = self.inner.log.sync().await {
            tracing::error!(error = %e, "final log sync failed");
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddLearner {
    pub id: NodeId,
    pub addr: String,
    pub region: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipChange {
    AddLearner(AddLearner),
    Promote(NodeId),
    Remove(NodeId),
    TransferLeader(NodeId),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::tests::create;

    /// Writes the first `succeeding` commands, then fails with `failure`.
    async fn written(
        succeeding: u64,
        failure: ClusterError,
    ) -> Result<(Applied, u64), ClusterError> {
        let mut index = 0;
        one_by_one(vec![create(1), create(2), create(3)], |_| {
            index += 1;
            let answer = if index <= succeeding {
                Ok((Applied::Events(Vec::new()), index))
            } else {
                Err(failure.clone())
            };
            async move { answer }
        })
        .await
    }

    #[tokio::test]
    async fn a_sequence_written_one_by_one_that_fails_part_way_says_it_was_partly_applied() {
        let (applied, last) = written(3, ClusterError::NoLeader).await.unwrap();
        assert_eq!(last, 3);
        let done = applied.into_sequence().unwrap();
        assert_eq!((done.events.len(), done.refused), (3, None));

        // Nothing written: the failure is the first command's, and a
        // failure before any log took it may be retried.
        let none = written(0, ClusterError::NoLeader).await.unwrap_err();
        assert_eq!(none, ClusterError::NoLeader);
        assert!(!none.may_have_applied());

        let part = written(2, ClusterError::NoLeader).await.unwrap_err();
        assert_eq!(
            part,
            ClusterError::PartlyApplied {
                applied: 2,
                cause: Box::new(ClusterError::NoLeader)
            }
        );
        assert!(part.may_have_applied(), "the first two took effect");
        assert!(part.to_string().contains("first 2 commands"), "{part}");
    }
}
