//! How a mission is being executed: which worker holds it, under which
//! epoch, until when, and which steps are done.
//!
//! Workers claim missions with a lease. Every claim raises the epoch, so a
//! worker that lost its lease (it stopped heartbeating and another worker
//! took over) is recognisable by its old epoch, and whatever it reports
//! afterwards is refused. A claim also issues the worker an ExecutionToken;
//! tokens of superseded claims stop working at the gateway.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{TokenId, WorkerId};
use crate::mission::saga::Saga;
use crate::time::{Millis, Timestamp};

/// Shortest and longest lease a claim or heartbeat may ask for.
pub const MIN_LEASE: Millis = Millis::from_secs(1);
pub const MAX_LEASE: Millis = Millis::from_secs(600);
/// Progress details carried by a heartbeat, encoded.
pub const MAX_PROGRESS_BYTES: usize = 16 * 1024;

/// A worker's hold on a mission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    pub worker: WorkerId,
    pub epoch: u64,
    /// The ExecutionToken issued with the claim.
    pub token: TokenId,
    pub claimed_at: Timestamp,
    /// The lease is held strictly before this time.
    pub expires_at: Timestamp,
    pub heartbeat_at: Option<Timestamp>,
}

impl Lease {
    pub fn is_held_at(&self, t: Timestamp) -> bool {
        t < self.expires_at
    }
}

/// How a worker says a step ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StepOutcome {
    /// The step's tool call `call` succeeded; its recorded output is the
    /// step's output. The worker names the call rather than restating the
    /// output, so the step record cannot disagree with the call record.
    Succeeded { call: u32 },
    /// The step's tool is governed only (it has no invocation for the
    /// gateway): policy permitted the step's call (`EvaluateToolCall`)
    /// and the agent performed it itself, with this output.
    Performed { output: Value },
    /// The step failed for good; the mission fails.
    Failed { reason: String },
}

/// A finished step, as committed: the mission's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepReport {
    pub step: u32,
    pub epoch: u64,
    pub worker: WorkerId,
    pub at: Timestamp,
    pub outcome: StepOutcome,
    /// The step's output: the succeeded call's, or the performed one's;
    /// null for a failure.
    pub output: Value,
}

/// The execution side of a mission.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Execution {
    /// Claims so far; the current lease carries this epoch.
    epoch: u64,
    lease: Option<Lease>,
    /// Finished steps, in order: step `i` is `reports[i]`.
    reports: Vec<StepReport>,
    /// What a worker last said about its progress in a heartbeat; kept
    /// across claims, so a worker taking over knows what its predecessor
    /// had got to.
    progress: Option<Value>,
    /// Tokens issued with claims that a later claim superseded.
    superseded_tokens: BTreeSet<TokenId>,
    /// Set when a step failed for good with completed steps to undo.
    saga: Option<Saga>,
    /// When the mission last became free for a worker mid-execution (its
    /// lease ran out or was taken back, or a stalled step was approved);
    /// none before the first claim, when the queueing time counts.
    #[serde(default)]
    free_since: Option<Timestamp>,
    /// Start-to-close stalls of each step since it last escalated.
    #[serde(default)]
    stalls: BTreeMap<u32, u32>,
}

impl Execution {
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }
    pub fn reports(&self) -> &[StepReport] {
        &self.reports
    }
    pub fn progress(&self) -> Option<&Value> {
        self.progress.as_ref()
    }
    /// The step a worker resumes from.
    pub fn next_step(&self) -> u32 {
        u32::try_from(self.reports.len()).expect("steps are bounded by the plan")
    }
    pub fn saga(&self) -> Option<&Saga> {
        self.saga.as_ref()
    }
    /// Whether compensations are still under way: nobody claims the
    /// mission meanwhile, and it does not time out or close.
    pub fn is_compensating(&self) -> bool {
        self.saga.as_ref().is_some_and(|s| !s.is_finished())
    }
    pub fn free_since(&self) -> Option<Timestamp> {
        self.free_since
    }
    /// Start-to-close stalls of `step` since it last escalated.
    pub fn stalls(&self, step: u32) -> u32 {
        self.stalls.get(&step).copied().unwrap_or(0)
    }
    /// When the step under way started: the claim, or the previous step's
    /// report if that came later.
    pub fn step_started_at(&self) -> Option<Timestamp> {
        let lease = self.lease.as_ref()?;
        Some(
            self.reports
                .last()
                .map_or(lease.claimed_at, |r| r.at.max(lease.claimed_at)),
        )
    }
    pub fn is_superseded(&self, token: &TokenId) -> bool {
        self.superseded_tokens.contains(token)
    }

    /// Whether nobody holds the mission at `t`.
    pub fn is_free_at(&self, t: Timestamp) -> bool {
        self.lease.as_ref().is_none_or(|l| !l.is_held_at(t))
    }

    /// A new claim: the epoch rises and an earlier claim's token retires.
    /// Returns the epoch superseded, if any.
    pub(crate) fn claim(&mut self, lease: Lease) -> Option<u64> {
        assert_eq!(
            lease.epoch,
            self.epoch + 1,
            "epochs rise one claim at a time"
        );
        self.epoch = lease.epoch;
        self.free_since = None;
        let previous = self.lease.replace(lease);
        previous.map(|p| {
            self.superseded_tokens.insert(p.token);
            p.epoch
        })
    }

    pub(crate) fn heartbeat(
        &mut self,
        at: Timestamp,
        expires_at: Timestamp,
        progress: Option<Value>,
    ) {
        let lease = self
            .lease
            .as_mut()
            .expect("a heartbeat is for a held lease");
        lease.heartbeat_at = Some(at);
        lease.expires_at = expires_at;
        if progress.is_some() {
            self.progress = progress;
        }
    }

    /// The lease ran out and nobody renewed it: the mission is free for the
    /// next claim, which resumes from the last report.
    pub(crate) fn release(&mut self, at: Timestamp) -> Lease {
        let lease = self.lease.take().expect("only a held lease is released");
        self.superseded_tokens.insert(lease.token.clone());
        self.free_since = Some(at);
        lease
    }

    /// The step under way overran its start-to-close timeout: its worker
    /// loses the lease (and token), and the stall is counted.
    pub(crate) fn stall(&mut self, step: u32, at: Timestamp) {
        self.release(at);
        *self.stalls.entry(step).or_default() += 1;
    }

    /// An approver let a stalled step go on: its count starts again, and
    /// so does its wait for a worker.
    pub(crate) fn unstall(&mut self, step: u32, at: Timestamp) {
        self.stalls.remove(&step);
        if self.lease.is_none() {
            self.free_since = Some(at);
        }
    }

    /// A step failed for good: the worker's lease ends (its token retires)
    /// and the runtime compensates.
    pub(crate) fn start_saga(&mut self, saga: Saga) {
        assert!(self.saga.is_none(), "a mission fails once");
        if let Some(lease) = self.lease.take() {
            self.superseded_tokens.insert(lease.token);
        }
        self.saga = Some(saga);
    }

    pub(crate) fn saga_mut(&mut self) -> &mut Saga {
        self.saga.as_mut().expect("only a started saga changes")
    }

    pub(crate) fn report(&mut self, report: StepReport) {
        assert_eq!(report.step, self.next_step(), "steps are reported in order");
        self.reports.push(report);
    }
}
