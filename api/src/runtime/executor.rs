//! The built-in executor: a worker inside `aura serve` for missions that
//! ask for it (context label `aura.executor: builtin`). It plans such a
//! mission when it was created without a plan (with its namespace's
//! reasoner),
//! and once the mission is queued it claims it like any worker, calls each
//! step's tool through the same gateway path as agents (schema, rate
//! limits, policy on the actual arguments, audit before effect), reports
//! each step under its epoch, heartbeats while it works, and seals the
//! outcome. A node that dies mid-mission loses its lease; another node's
//! executor takes over from the last reported step.

use std::time::Duration;

use aura_engine::Actor;
use aura_engine::ids::{MissionId, TenantId, TokenId, WorkerId};
use aura_engine::machine::{Advance, Closing, CommandBody, Event, Rejection};
use aura_engine::mission::retry::DEFAULT_RETRY_POLICY;
use aura_engine::mission::{
    AbortReason, CallResult, HoldKind, Mission, MissionState, PlanStep, RetryState, StepOutcome,
    ToolCallRequest,
};
use aura_engine::policy::authority::ApprovalStatus;
use aura_engine::policy::reasoner::ReasonerConfig;
use aura_engine::time::Millis;
use serde_json::json;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::claim_share::{ClaimShare, Turn};
use super::inflight::InFlight;
use super::queue;
use super::reasoner::{
    ATTEMPTS_RECORD_KEY, PLAN_RECORD_KEY, PlanAttempts, Reasoner, ReasonerError,
};
use crate::app::work::claim_mission;
use crate::app::{App, AppError};
use crate::gateway::{CallStatus, Caller, FollowUp};
use crate::time;

/// The context label that hands a mission to the built-in executor.
pub const EXECUTOR_LABEL: &str = "aura.executor";
pub const BUILTIN: &str = "builtin";

#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// This node's worker name, recorded in every lease it holds.
    pub worker: WorkerId,
    pub lease: Millis,
    /// Missions this node runs at once.
    pub concurrency: usize,
}

fn is_ours(m: &Mission) -> bool {
    m.context()
        .get()
        .labels
        .get(EXECUTOR_LABEL)
        .is_some_and(|v| v == BUILTIN)
}

/// A mission this node claimed.
#[derive(Debug, Clone)]
struct Job {
    tenant: TenantId,
    mission: MissionId,
    epoch: u64,
    token: TokenId,
}

/// Runs the executor until the task is dropped.
///
/// Planning and claiming each run as tasks of their own, up to the
/// configured concurrency: a slow reasoner or a commit in flight for one
/// mission never holds up another's.
pub async fn run(app: App, config: ExecutorConfig) {
    let mut feed = app.engine().subscribe();
    let (planning, running) = (InFlight::default(), InFlight::default());
    let (mut planners, mut workers) = (JoinSet::new(), JoinSet::new());
    loop {
        while planners.try_join_next().is_some() {}
        while workers.try_join_next().is_some() {}
        // Planning is done by the leader alone, so two nodes never plan
        // the same mission; claims are safe from any node (leases).
        if app.engine().is_leader() {
            let free = config.concurrency.saturating_sub(planners.len());
            for (tenant, m, reasoner) in unplanned(&app, &planning, free) {
                let key = (tenant.clone(), m.id().clone());
                planning.take(key.clone());
                let (app, planning) = (app.clone(), planning.clone());
                let span = tracing::info_span!("plan", tenant = %tenant, mission = %m.id());
                planners.spawn(
                    async move {
                        Box::pin(plan(&app, &tenant, &m, &reasoner)).await;
                        planning.release(&key);
                    }
                    .instrument(span),
                );
            }
        }
        let free = config.concurrency.saturating_sub(workers.len());
        for key in claimable(&app, &running, free) {
            running.take(key.clone());
            let (app, config, running) = (app.clone(), config.clone(), running.clone());
            let span = tracing::info_span!("execute", tenant = %key.0, mission = %key.1);
            // Claiming and driving (and planning, above) are boxed: their
            // futures are large (a whole mission's steps, gateway calls
            // included), and a task's future is copied whole when it is
            // spawned and again as the task changes stage, which was most
            // of what a spawn cost.
            workers.spawn(
                async move {
                    if let Some(job) = Box::pin(claim(&app, &config, &key)).await
                        && let Err(why) = Box::pin(drive(&app, &job, config.lease)).await
                    {
                        tracing::info!(%why, "executor stopped a mission");
                    }
                    running.release(&key);
                }
                .instrument(span),
            );
        }
        tokio::select! {
            () = super::committed_where(&mut feed, may_open_work) => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
            Some(_) = planners.join_next(), if !planners.is_empty() => {}
        }
    }
}

/// Whether committed events may have given the executor something to
/// plan or claim. Most of a running mission's commands (its tool calls,
/// step reports, heartbeats, working-state writes) cannot: on a busy node
/// scanning after each of them was most of the executor's own work. What
/// time alone makes claimable (an ended lease, a grace period, a planning
/// retry coming due) is found by the scan the executor makes every second
/// anyway.
fn may_open_work(item: &aura_raft::FeedItem) -> bool {
    item.events.iter().any(|e| {
        !matches!(
            e,
            Event::StateDataWritten { .. }
                | Event::ToolCallDecided { .. }
                | Event::ToolCallDispatched { .. }
                | Event::ToolCallCompleted { .. }
                | Event::ToolCallRefused { .. }
                | Event::StepReported { .. }
                | Event::HeartbeatRecorded { .. }
                | Event::CheckpointSigned { .. }
                | Event::CommandRejected { .. }
        )
    })
}

/// Up to `limit` missions handed to the executor that have no plan yet and
/// that this node is not already planning: a CREATED one from the start,
/// and one left in PLANNING by a node that died mid-way.
fn unplanned(
    app: &App,
    planning: &InFlight,
    limit: usize,
) -> Vec<(TenantId, Mission, ReasonerConfig)> {
    app.read_local(|s| {
        s.tenants()
            .flat_map(|t| {
                t.unplanned_missions()
                    .filter(|m| is_ours(m) && !planning.contains(&(t.id().clone(), m.id().clone())))
                    .map(|m| {
                        let reasoner = t
                            .namespaces()
                            .get(m.namespace())
                            .map(|n| n.reasoner.clone())
                            .unwrap_or_default();
                        (t.id().clone(), m.clone(), reasoner)
                    })
            })
            .take(limit)
            .collect()
    })
}

/// Plans one mission. The reasoner's exchange is recorded in the mission's
/// working state in the same log entry as the plan it gave (in entries of
/// their own while the cluster writes no sequences), and a mission whose
/// exchange is recorded is never planned twice: its recorded plan is
/// submitted.
///
/// A mission that waits on a model is marked PLANNING first, so that the
/// wait shows; without a model (the scripted reasoner) the plan is at hand
/// at once, and the start of planning goes in the same entry as the rest.
async fn plan(app: &App, tenant: &TenantId, m: &Mission, config: &ReasonerConfig) {
    let id = m.id().clone();
    let mut bodies = Vec::new();
    if m.state() == MissionState::Created {
        let begin = CommandBody::AdvanceMission {
            mission: id.clone(),
            step: Advance::BeginPlanning,
        };
        if config.model().is_none() {
            bodies.push(begin);
        } else if let Err(e) = app.propose(tenant, Actor::Runtime, begin).await {
            tracing::debug!(error = ?e, "planning overtaken");
            return;
        }
    }
    let overtaken_at = bodies.len();
    let recorded = state_record::<RecordedPlan>(m, PLAN_RECORD_KEY);
    let attempts = state_record::<PlanAttempts>(m, ATTEMPTS_RECORD_KEY);
    let asked_at = time::now();
    let mut records_exchange = false;
    match recorded {
        Some(r) => bodies.push(CommandBody::SubmitPlan {
            mission: id.clone(),
            steps: r.output,
        }),
        None if attempts.as_ref().is_some_and(|a| asked_at < a.not_before) => return,
        None => match plan_with(config, tenant, m, app).await {
            Ok(exchange) => {
                let record = serde_json::to_value(&exchange).expect("an exchange serializes");
                bodies.push(CommandBody::WriteStateData {
                    mission: id.clone(),
                    key: PLAN_RECORD_KEY.into(),
                    value: Some(record),
                });
                bodies.push(CommandBody::SubmitPlan {
                    mission: id.clone(),
                    steps: exchange.output,
                });
                records_exchange = true;
            }
            Err(e) => match after_failure(config, &e, attempts.as_ref(), asked_at, time::now()) {
                AfterFailure::Retry(record) => bodies.push(CommandBody::WriteStateData {
                    mission: id.clone(),
                    key: ATTEMPTS_RECORD_KEY.into(),
                    value: Some(serde_json::to_value(&record).expect("attempts serialize")),
                }),
                AfterFailure::Fail(note) => bodies.push(fail(&id, note)),
            },
        },
    }
    let applied = match app.propose_sequence(tenant, Actor::Runtime, bodies).await {
        Ok(applied) => applied,
        Err(e) => {
            tracing::warn!(error = %e, "planning not recorded");
            return;
        }
    };
    match applied.refused {
        None => {}
        Some(r) if applied.events.len() < overtaken_at => {
            tracing::debug!(rejection = ?r, "planning overtaken");
        }
        // A plan whose origin cannot be recorded is not submitted; asking
        // again would only repeat it.
        Some(Rejection::StateData(e)) if records_exchange => {
            let note = format!("the reasoner's exchange cannot be recorded: {e}");
            if let Err(e) = app.propose(tenant, Actor::Runtime, fail(&id, note)).await {
                tracing::warn!(error = ?e, "planning failure not recorded");
            }
        }
        Some(r) => tracing::warn!(rejection = ?r, "plan not submitted"),
    }
}

/// Asks the namespace's reasoner, as configured when the mission is
/// planned, for a plan.
async fn plan_with(
    config: &ReasonerConfig,
    tenant: &TenantId,
    m: &Mission,
    app: &App,
) -> Result<super::reasoner::PlanExchange, ReasonerError> {
    Reasoner::resolve(config, |name| {
        crate::app::secrets::reveal(app, tenant, name).map_err(ReasonerError::Secret)
    })?
    .plan(m, app.gateway().tool_client())
    .await
}

/// What follows a reasoner's failure to plan.
enum AfterFailure {
    /// Ask again once this record's `not_before` has passed.
    Retry(PlanAttempts),
    /// The mission fails, with this note.
    Fail(String),
}

/// A model that did not answer is asked again under the reasoner's retry
/// policy (the tools' policy, so the schedule and its limits mean the
/// same); anything else fails the mission at once.
fn after_failure(
    config: &ReasonerConfig,
    e: &ReasonerError,
    attempts: Option<&PlanAttempts>,
    asked_at: aura_engine::Timestamp,
    failed_at: aura_engine::Timestamp,
) -> AfterFailure {
    let note = format!("the {} reasoner could not plan: {e}", config.provider());
    let (ReasonerError::Unavailable { failure, message }, Some(model)) = (e, config.model()) else {
        return AfterFailure::Fail(note);
    };
    let policy = model.retry.as_ref().unwrap_or(&DEFAULT_RETRY_POLICY);
    let failed = attempts.map_or(0, |a| a.failed_attempts) + 1;
    let first_at = attempts.map_or(asked_at, |a| a.first_at);
    match policy.after_failure(*failure, failed, first_at, failed_at) {
        RetryState::Scheduled { not_before, .. } => AfterFailure::Retry(PlanAttempts {
            failed_attempts: failed,
            first_at,
            not_before,
            last_error: message.clone(),
        }),
        RetryState::Exhausted { why, .. } => AfterFailure::Fail(format!("{note} ({why})")),
    }
}

fn fail(mission: &MissionId, note: String) -> CommandBody {
    CommandBody::CloseMission {
        mission: mission.clone(),
        closing: Closing::Abort {
            reason: AbortReason::Failed,
            note,
        },
    }
}

/// A record the executor keeps in the mission's working state.
fn state_record<T: serde::de::DeserializeOwned>(m: &Mission, key: &str) -> Option<T> {
    m.state_data()
        .entries()
        .get(key)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The part of a recorded planning exchange a resumed planning needs.
#[derive(serde::Deserialize)]
struct RecordedPlan {
    output: Vec<aura_engine::mission::PlanStep>,
}

/// Up to `limit` missions handed to the executor that a claim may take
/// now and that this node is not already claiming or running, in any
/// tenant, in queue order: first those offered to this node, then those
/// other nodes left waiting past the grace period ([`ClaimShare`]).
///
/// It reads the queue only as far as it must: not at all without a free
/// slot, and no further once `limit` missions of this node's own share
/// are found. A busy cluster's queue holds hundreds of missions, and every
/// node scans it after every batch of commits.
fn claimable(app: &App, running: &InFlight, limit: usize) -> Vec<(TenantId, MissionId)> {
    if limit == 0 {
        return Vec::new();
    }
    let now = time::now();
    let share = ClaimShare::of(app.engine());
    app.read_local(|s| {
        let (mut mine, mut spare) = (Vec::new(), Vec::new());
        // Missions offered to another node and still in their grace
        // period (most of the queue, on three nodes) are passed over before
        // the candidate checks that look up agents and credentials.
        let open_to_us = |m: &Mission| share.turn(m, now) != Turn::Theirs && is_ours(m);
        'tenants: for t in s.tenants() {
            for ns in t.namespaces().keys() {
                for m in queue::candidates(t, ns, None, now, open_to_us) {
                    let wanted = match share.turn(m, now) {
                        Turn::Mine => &mut mine,
                        Turn::Spare if spare.len() < limit => &mut spare,
                        Turn::Spare | Turn::Theirs => continue,
                    };
                    let key = (t.id().clone(), m.id().clone());
                    if !running.contains(&key) {
                        wanted.push(key);
                    }
                    if mine.len() == limit {
                        break 'tenants;
                    }
                }
            }
        }
        mine.into_iter().chain(spare).take(limit).collect()
    })
}

/// Claims the mission for this node; `None` when another worker took it
/// first or the engine refused.
async fn claim(
    app: &App,
    config: &ExecutorConfig,
    (tenant, mission): &(TenantId, MissionId),
) -> Option<Job> {
    let claimed = claim_mission(
        app,
        tenant,
        Actor::Runtime,
        mission,
        &config.worker,
        config.lease,
    )
    .await;
    match claimed {
        Ok(claimed) => Some(Job {
            tenant: tenant.clone(),
            mission: mission.clone(),
            epoch: claimed.epoch,
            token: claimed.token,
        }),
        Err(e) => {
            tracing::debug!(%tenant, %mission, error = ?e, "claim overtaken");
            None
        }
    }
}

/// Keeps the lease while the mission runs; ends when a heartbeat is
/// refused (the lease is lost: the mission is someone else's now).
async fn heartbeats(app: App, job: Job, lease: Millis) {
    let every = Duration::from_millis(lease.0 / 3);
    loop {
        tokio::time::sleep(every).await;
        let body = CommandBody::Heartbeat {
            mission: job.mission.clone(),
            epoch: job.epoch,
            lease,
            progress: None,
        };
        match app.propose(&job.tenant, Actor::Runtime, body).await {
            Ok(_) => {}
            Err(AppError::Refused { .. }) => return,
            Err(e) => {
                tracing::warn!(mission = %job.mission, error = %e, "heartbeat not recorded");
            }
        }
    }
}

fn read_mission<R>(app: &App, job: &Job, f: impl FnOnce(&Mission) -> Option<R>) -> Option<R> {
    app.read_local(|s| {
        s.tenant(&job.tenant)
            .and_then(|t| t.missions().get(&job.mission))
            .and_then(f)
    })
}

/// Runs the claimed mission from its first unreported step to its sealed
/// outcome.
async fn drive(app: &App, job: &Job, lease: Millis) -> Result<(), String> {
    let keepalive = tokio::spawn(heartbeats(app.clone(), job.clone(), lease));
    let result = run_steps(app, job, &keepalive).await;
    keepalive.abort();
    result
}

async fn run_steps(
    app: &App,
    job: &Job,
    keepalive: &tokio::task::JoinHandle<()>,
) -> Result<(), String> {
    let (steps, mut outputs, agent) = read_mission(app, job, |m| {
        Some((
            m.plan()?.steps.clone(),
            reported_outputs(m),
            m.agent().clone(),
        ))
    })
    .ok_or("the mission has no plan")?;
    let serial = app
        .read_local(|s| {
            s.tenant(&job.tenant)?
                .active_credential(&agent, time::now())
        })
        .ok_or("the mission's agent holds no valid credential")?;
    let caller = Caller {
        actor: Actor::Runtime,
        agent,
        credential_serial: serial,
        token: job.token.clone(),
    };
    // The step's call when its dispatch was committed with the step
    // before: the dispatch's events.
    let mut dispatched = None;
    for (step, planned) in steps.iter().enumerate().skip(outputs.len()) {
        if keepalive.is_finished() {
            return Err("the lease was lost".into());
        }
        let step = u32::try_from(step).expect("plans are bounded");
        let request = call_request(job, step, planned);
        // The next step's call is checked ahead, so that its dispatch can
        // go with this step's report.
        let next = match steps.get(step as usize + 1) {
            Some(p) => {
                let next = call_request(job, step + 1, p);
                app.gateway().check_for_executor(app, &next, &caller).await
            }
            None => None,
        };
        let last = step as usize + 1 == steps.len();
        // What the seal needs, after the last step.
        let sealing = last.then(|| outputs.clone());
        // A successful call's result, its step report and then either the
        // next call's dispatch or, after the last step, the seal are
        // committed together.
        let mut follow_up = {
            let job = job.clone();
            FollowUp::new(move |result| {
                let mut then = vec![succeeded(&job, step)];
                then.extend(next);
                if let (Some(mut outputs), CallResult::Succeeded { output, .. }) = (sealing, result)
                {
                    outputs.push(output.clone());
                    then.push(seal(&job, outputs));
                }
                then
            })
        };
        let call = StepCall {
            request: &request,
            caller: &caller,
            dispatched: dispatched.take(),
        };
        let (outcome, output) = call_step(app, job, call, &mut follow_up, keepalive).await?;
        outputs.extend(output);
        match follow_up.committed() {
            // Not proposed: the report is still to make.
            None => {}
            Some(then) => {
                // `then.events` holds the report's events, then the next
                // dispatch's or the seal's. A refused report means the
                // lease was lost; a refused seal stops here as well.
                if let Some(r) = &then.refused
                    && (then.events.is_empty() || last)
                {
                    return Err(r.to_string());
                }
                // A refused dispatch is dispatched again, and met, in the
                // next step's call.
                dispatched = if last {
                    None
                } else {
                    then.events.get(1).cloned()
                };
                continue;
            }
        }
        let failed = matches!(outcome, StepOutcome::Failed { .. });
        app.propose(&job.tenant, Actor::Runtime, report(job, step, outcome))
            .await
            .map_err(|e| e.to_string())?;
        if failed {
            return Ok(());
        }
    }
    // Reached when the last report was committed on its own (its call's
    // result was recorded before, or this mission was taken over with
    // every step reported).
    let outputs = read_mission(app, job, |m| {
        (m.state() == MissionState::Executed).then(|| reported_outputs(m))
    });
    if let Some(outputs) = outputs {
        app.propose(&job.tenant, Actor::Runtime, seal(job, outputs))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One step's call as the executor makes it.
struct StepCall<'a> {
    request: &'a ToolCallRequest,
    caller: &'a Caller,
    /// The call's dispatch, when it was committed with the step before.
    dispatched: Option<Vec<aura_engine::machine::Event>>,
}

/// Makes the step's call until it has an outcome: through approvals,
/// scheduled retries and an approver's say on used-up retries. A
/// succeeded call's outcome comes with its output.
async fn call_step(
    app: &App,
    job: &Job,
    mut call: StepCall<'_>,
    follow_up: &mut FollowUp,
    keepalive: &tokio::task::JoinHandle<()>,
) -> Result<(StepOutcome, Option<serde_json::Value>), String> {
    let step = call.request.step;
    loop {
        let answer = app
            .gateway()
            .call_for_executor(
                app,
                call.request,
                call.caller,
                call.dispatched.take(),
                follow_up,
            )
            .await;
        let refusal = match answer {
            Ok(o) if o.status == CallStatus::AwaitingApproval => {
                if await_hold(app, job, step, keepalive).await? == ApprovalStatus::Approved {
                    continue;
                }
                let reason = format!("step {step}'s approval was rejected");
                return Ok((StepOutcome::Failed { reason }, None));
            }
            Ok(o) => {
                return match o.result {
                    Some(CallResult::Succeeded { output, .. }) => {
                        Ok((StepOutcome::Succeeded { call: 0 }, Some(output)))
                    }
                    Some(CallResult::Failed { message, .. }) => {
                        Ok((StepOutcome::Failed { reason: message }, None))
                    }
                    None => Err("a completed call without a result".into()),
                };
            }
            Err(refusal) => refusal,
        };
        // A failure with a retry scheduled (or a rate limit): the same call
        // again once it is due.
        if let Some(wait) = refusal.retry_after_ms {
            sleep_holding(Duration::from_millis(wait), keepalive).await?;
            continue;
        }
        // Retries used up under a policy that escalates: an approver
        // decides whether the call gets more attempts.
        let reason = if exhaustion_held(app, job, step) {
            if await_hold(app, job, step, keepalive).await? == ApprovalStatus::Approved {
                continue;
            }
            format!("{}; no approver allowed more attempts", refusal.error)
        } else {
            refusal.error.to_string()
        };
        return Ok((StepOutcome::Failed { reason }, None));
    }
}

/// The step's one call. A retry, and a request after a crash, is the same
/// call: the gateway answers from the record or sends it with the same
/// idempotency key.
fn call_request(job: &Job, step: u32, planned: &PlanStep) -> ToolCallRequest {
    ToolCallRequest {
        tenant: job.tenant.clone(),
        mission: job.mission.clone(),
        step,
        call: 0,
        tool: planned.tool.clone(),
        arguments: planned.arguments.clone(),
    }
}

/// The outputs of the steps reported so far, in step order.
fn reported_outputs(m: &Mission) -> Vec<serde_json::Value> {
    m.execution()
        .reports()
        .iter()
        .map(|r| r.output.clone())
        .collect()
}

fn report(job: &Job, step: u32, outcome: StepOutcome) -> CommandBody {
    CommandBody::ReportStep {
        mission: job.mission.clone(),
        epoch: job.epoch,
        step,
        outcome,
    }
}

/// The report of a step whose one call succeeded.
fn succeeded(job: &Job, step: u32) -> CommandBody {
    report(job, step, StepOutcome::Succeeded { call: 0 })
}

/// Seals the executed mission with every step's output.
fn seal(job: &Job, outputs: Vec<serde_json::Value>) -> CommandBody {
    CommandBody::CloseMission {
        mission: job.mission.clone(),
        closing: Closing::Seal {
            result: json!({ "steps": outputs }),
        },
    }
}

/// Whether the step waits for an approver after its call used up its
/// retries.
fn exhaustion_held(app: &App, job: &Job, step: u32) -> bool {
    read_mission(app, job, |m| {
        m.holds().get(&step).filter(|h| {
            matches!(h.kind, HoldKind::RetriesExhausted { .. })
                && h.approval.status == ApprovalStatus::Pending
        })?;
        Some(())
    })
    .is_some()
}

/// Sleeps, unless the lease is lost meanwhile.
async fn sleep_holding(
    wait: Duration,
    keepalive: &tokio::task::JoinHandle<()>,
) -> Result<(), String> {
    let until = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < until {
        if keepalive.is_finished() {
            return Err("the lease was lost".into());
        }
        tokio::time::sleep_until(
            until.min(tokio::time::Instant::now() + Duration::from_millis(250)),
        )
        .await;
    }
    Ok(())
}

/// Waits until the held step's approval is decided.
async fn await_hold(
    app: &App,
    job: &Job,
    step: u32,
    keepalive: &tokio::task::JoinHandle<()>,
) -> Result<ApprovalStatus, String> {
    loop {
        let status = read_mission(app, job, |m| {
            m.holds().get(&step).map(|h| h.approval.status)
        });
        match status {
            Some(ApprovalStatus::Pending) | None => {}
            Some(decided) => return Ok(decided),
        }
        if keepalive.is_finished() {
            return Err("the lease was lost".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use aura_engine::mission::Step;

    use super::*;

    fn item(events: Vec<Event>) -> aura_raft::FeedItem {
        aura_raft::FeedItem {
            index: 1,
            tenant: "acme".parse().unwrap(),
            mission: None,
            at: aura_engine::Timestamp(0),
            events,
        }
    }

    #[test]
    fn a_running_missions_own_progress_gives_no_work_and_a_queued_mission_does() {
        let mission: MissionId = "m-1".parse().unwrap();
        let heartbeat = Event::HeartbeatRecorded {
            mission: mission.clone(),
            epoch: 1,
            expires_at: aura_engine::Timestamp(0),
            progress: None,
        };
        assert!(!may_open_work(&item(vec![heartbeat.clone()])));
        assert!(!may_open_work(&item(vec![])));
        let queued = Event::MissionAdvanced {
            mission,
            from: MissionState::Planning,
            to: MissionState::PendingExecution,
            step: Step::Enqueue,
        };
        assert!(may_open_work(&item(vec![heartbeat, queued])));
    }
}
