//! The worker protocol: claim a mission from a namespace's queue, keep
//! its lease with heartbeats, report each step. External workers reach it
//! over REST; the built-in executor claims through [`claim_mission`] too,
//! so a claim is made one way whoever makes it. Every call carries the
//! claim's epoch; once another worker has taken over, the engine refuses
//! the old epoch.

use std::sync::Arc;
use std::time::Duration;

use aura_engine::Actor;
use aura_engine::identity::ExecutionToken;
use aura_engine::ids::{AgentId, MissionId, NamespaceId, TenantId, TokenId, WorkerId};
use aura_engine::machine::rejection::Rejection;
use aura_engine::machine::{CommandBody, Event, TenantState};
use aura_engine::mission::execution::{MAX_LEASE, MIN_LEASE};
use aura_engine::mission::{Lease, Mission, PlanStep, StepOutcome, StepReport};
use aura_engine::time::Millis;
use aura_raft::FeedItem;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::ToSchema;

use super::scope::{Member, TenantScope, Worker};
use super::{App, AppError};
use crate::runtime::queue;
use crate::time;

/// The lease a claim or heartbeat gets when it names none.
pub const DEFAULT_LEASE: Millis = Millis(30_000);

/// A mission claimed: the lease's epoch and the claim's ExecutionToken id.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub epoch: u64,
    pub token: TokenId,
    pub events: Vec<Event>,
}

/// Claims `mission` for `worker` under a new lease: the one way a claim is
/// made. The claim's token id says who claimed: `x-` for the built-in
/// executor (the runtime), `w-` for an external worker.
pub async fn claim_mission(
    app: &App,
    tenant: &TenantId,
    actor: Actor,
    mission: &MissionId,
    worker: &WorkerId,
    lease: Millis,
) -> Result<Claimed, AppError> {
    let prefix = if actor == Actor::Runtime { "x" } else { "w" };
    let token = TokenId::new(format!("{prefix}-{}", crate::random::hex(8))).expect("valid id");
    let body = CommandBody::ClaimMission {
        mission: mission.clone(),
        worker: worker.clone(),
        lease,
        token: token.clone(),
    };
    let events = app.propose(tenant, actor, body).await?;
    let epoch = events
        .iter()
        .find_map(|e| match e {
            Event::MissionClaimed { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .ok_or_else(|| AppError::Internal("a claim was applied without an epoch".into()))?;
    Ok(Claimed {
        epoch,
        token,
        events,
    })
}

/// What a worker asks of the queue.
#[derive(Debug, Clone)]
pub struct ClaimNext {
    pub namespace: NamespaceId,
    pub worker: WorkerId,
    pub lease: Millis,
    /// How long to wait for a mission when none is queued.
    pub wait: Duration,
    /// The longest wait the front door allows.
    pub max_wait: Duration,
    /// Only missions of this agent.
    pub agent: Option<AgentId>,
}

/// A claimed mission: everything a worker needs to run or resume it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assignment {
    #[schema(value_type = String)]
    pub mission: MissionId,
    #[schema(value_type = String)]
    pub namespace: NamespaceId,
    #[schema(value_type = String)]
    pub agent: AgentId,
    pub objective: String,
    /// Send with every heartbeat and report.
    pub epoch: u64,
    /// Epoch milliseconds; heartbeat before then.
    pub lease_expires_at: i64,
    /// The first step not yet reported: resume here.
    pub next_step: u32,
    pub steps: Vec<PlanStep>,
    /// Steps already done, with their outputs.
    pub reports: Vec<StepReport>,
    /// What a worker last said about its progress (a previous holder's,
    /// on a takeover).
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Value>,
    /// The ExecutionToken of this claim, for the Tool Gateway; it stops
    /// working when a later claim takes over.
    pub token: ExecutionToken,
}

fn check_lease(lease: Millis) -> Result<(), AppError> {
    if lease < MIN_LEASE || lease > MAX_LEASE {
        return Err(AppError::invalid(
            "/lease_ms",
            "must be 1000 to 600000 milliseconds",
        ));
    }
    Ok(())
}

/// Claims the next mission of the namespace's queue, waiting up to
/// `ask.wait` for one; `None` when there was nothing to claim.
pub async fn claim_next(
    app: &App,
    scope: &TenantScope<Worker>,
    ask: ClaimNext,
) -> Result<Option<Assignment>, AppError> {
    let known = scope.read(app, |t| t.namespaces().contains_key(&ask.namespace))?;
    if !known {
        return Err(AppError::not_found("namespace", ask.namespace.as_str()));
    }
    check_lease(ask.lease)?;
    if ask.wait > ask.max_wait {
        return Err(AppError::invalid(
            "/wait_ms",
            format!("must be at most {} milliseconds", ask.max_wait.as_millis()),
        ));
    }
    let until = tokio::time::Instant::now() + ask.wait;
    // Subscribed before looking, so a mission queued in between wakes us.
    let mut feed = app.engine().subscribe();
    loop {
        let now = time::now();
        let found = scope.read(app, |t| {
            queue::candidates(t, &ask.namespace, ask.agent.as_ref(), now, |_| true)
                .map(|m| m.id().clone())
                .collect::<Vec<_>>()
        })?;
        for mission in found {
            let claimed = claim_mission(
                app,
                &scope.tenant,
                scope.actor(),
                &mission,
                &ask.worker,
                ask.lease,
            )
            .await;
            match claimed {
                Ok(claimed) => {
                    return scope
                        .read(app, |t| assignment(t, &mission, &claimed.events))?
                        .map(Some)
                        .ok_or_else(|| {
                            AppError::Internal(
                                "the claim was recorded but its mission cannot be read".into(),
                            )
                        });
                }
                // Another worker was faster, or the mission moved on.
                Err(AppError::Refused { rejection, .. }) => {
                    tracing::debug!(%mission, refusal = %rejection, "claim overtaken");
                }
                Err(e) => return Err(e),
            }
        }
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        // Leases lapse without any commit, so look again at least every
        // second even when nothing happens in the tenant.
        let recheck = tokio::time::sleep(left.min(Duration::from_secs(1)));
        tokio::select! {
            () = recheck => {}
            () = tenant_changed(&mut feed, &scope.tenant) => {}
        }
    }
}

async fn tenant_changed(feed: &mut broadcast::Receiver<Arc<FeedItem>>, tenant: &TenantId) {
    loop {
        match feed.recv().await {
            Ok(item) if &item.tenant == tenant => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

fn assignment(t: &TenantState, mission: &MissionId, events: &[Event]) -> Option<Assignment> {
    let m = t.missions().get(mission)?;
    let token = events.iter().find_map(|e| match e {
        Event::MissionClaimed { token, .. } => Some(token.clone()),
        _ => None,
    })?;
    let lease = m.execution().lease()?;
    Some(Assignment {
        mission: mission.clone(),
        namespace: m.namespace().clone(),
        agent: m.agent().clone(),
        objective: m.definition().objective.clone(),
        epoch: lease.epoch,
        lease_expires_at: lease.expires_at.as_millis(),
        next_step: m.execution().next_step(),
        steps: m.plan().map(|p| p.steps.clone()).unwrap_or_default(),
        reports: m.execution().reports().to_vec(),
        progress: m.execution().progress().cloned(),
        token,
    })
}

/// Who holds a mission, and until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaseView {
    #[schema(value_type = String)]
    pub worker: WorkerId,
    pub epoch: u64,
    /// Epoch milliseconds.
    pub expires_at: i64,
}

impl From<&Lease> for LeaseView {
    fn from(l: &Lease) -> LeaseView {
        LeaseView {
            worker: l.worker.clone(),
            epoch: l.epoch,
            expires_at: l.expires_at.as_millis(),
        }
    }
}

/// Extends the lease of the worker holding the mission.
pub async fn heartbeat(
    app: &App,
    scope: &TenantScope<Worker>,
    mission: &MissionId,
    epoch: u64,
    lease: Millis,
    progress: Option<Value>,
) -> Result<LeaseView, AppError> {
    let body = CommandBody::Heartbeat {
        mission: mission.clone(),
        epoch,
        lease,
        progress,
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    scope
        .read(app, |t| {
            t.missions()
                .get(mission)
                .and_then(|m| m.execution().lease().map(LeaseView::from))
        })?
        .ok_or_else(|| Rejection::LeaseLost { epoch }.into())
}

/// Where a mission's execution stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView {
    #[schema(value_type = String)]
    pub state: aura_engine::mission::MissionState,
    /// Claims so far.
    pub epoch: u64,
    pub lease: Option<LeaseView>,
    /// What a worker last said about its progress.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Value>,
    pub next_step: u32,
    pub steps: u32,
    pub reports: Vec<StepReport>,
    /// After a step failed for good: the completed steps being undone,
    /// latest first, each with its compensation call.
    pub saga: Option<aura_engine::mission::Saga>,
}

fn execution_view(m: &Mission) -> ExecutionView {
    let e = m.execution();
    ExecutionView {
        state: m.state(),
        epoch: e.epoch(),
        lease: e.lease().map(LeaseView::from),
        progress: e.progress().cloned(),
        next_step: e.next_step(),
        steps: m
            .plan()
            .map_or(0, |p| u32::try_from(p.steps.len()).unwrap_or(u32::MAX)),
        reports: e.reports().to_vec(),
        saga: e.saga().cloned(),
    }
}

/// Reports a step; the last step's success moves the mission to EXECUTED.
/// The answer is read after the report, on this node, which applied it.
pub async fn report_step(
    app: &App,
    scope: &TenantScope<Worker>,
    mission: &MissionId,
    epoch: u64,
    step: u32,
    outcome: StepOutcome,
) -> Result<ExecutionView, AppError> {
    let body = CommandBody::ReportStep {
        mission: mission.clone(),
        epoch,
        step,
        outcome,
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    read_execution(app, scope, mission)
}

/// Who executes the mission and how far they got.
pub fn execution(
    app: &App,
    scope: &TenantScope<Member>,
    mission: &MissionId,
) -> Result<ExecutionView, AppError> {
    read_execution(app, scope, mission)
}

fn read_execution<R>(
    app: &App,
    scope: &TenantScope<R>,
    mission: &MissionId,
) -> Result<ExecutionView, AppError> {
    scope
        .read(app, |t| t.missions().get(mission).map(execution_view))?
        .ok_or_else(|| AppError::not_found("mission", mission.as_str()))
}
