//! The Tool Gateway: every tool call an agent makes goes through here.
//!
//! The path of one call, in order (docs/gateway.md):
//! 1. DualToken: the request is signed with the agent's identity key and
//!    carries its credential and the mission's ExecutionToken; the nonce is
//!    recorded in the replay cache.
//! 2. The arguments are checked against the tool's JSON Schema (the token's
//!    parameter bounds were checked in 1).
//! 3. Rate limits per agent, tool and tenant.
//! 4. `DispatchToolCall` through the engine: mission IN_PROGRESS, tool in
//!    its frozen boundary, policy on the actual arguments, the deployment
//!    the data may reach. Committed before the tool is called.
//! 5. The tool is called; `CompleteToolCall` commits the result before the
//!    agent hears it.
//!
//! Before 1, each source address is rate-limited (nothing in the request
//! is read until it passes). A schema refusal (2, after the caller is
//! established) is committed as `RefuseToolCall`, so attempts are audited
//! as well as calls. A failed DualToken check (1) may come from anyone, so
//! it is counted and sampled ([`refusals`]): one `RefuseToolCall` per
//! tenant, code and window, never one per anonymous request. A
//! rate-limited call is refused without an audit entry: recording every
//! refusal of a flood would let the flood fill the audit chain.

pub mod follow_up;
pub mod invoke;
pub mod limits;
pub mod refusals;
pub mod replay;
pub mod schema;

use std::collections::BTreeSet;
use std::fmt;

use aura_engine::Actor;
use aura_engine::identity::dualtoken::{DualTokenError, NonceUse, Signed, VerifiedPrincipal};
use aura_engine::identity::{
    AgentCredential, DualTokenVerifier, ExecutionToken, SignedRequest, StaticTrust,
};
use aura_engine::ids::AgentId;
use aura_engine::machine::rejection::Rejection;
use aura_engine::machine::{CommandBody, Event};
use aura_engine::mission::{CallResult, RetryState, ToolCallRequest};
use aura_engine::policy::{Decision, DecisionRecord};
use aura_engine::time::{Millis, Timestamp};
use aura_engine::tool::DEFAULT_CALL_TIMEOUT_MS;
use aura_raft::SequenceApplied;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use self::follow_up::FollowUp;
use self::invoke::{ToolClient, ToolRequestBody};
use self::limits::{Limiter, Limits, Verdict};
use self::refusals::RefusalSampler;
use self::replay::ReplayCache;
use self::schema::SchemaCache;
use crate::app::error::joined;
use crate::app::{App, AppError, FieldError};

/// The path agents sign for a tool call.
pub const TOOL_CALLS_PATH: &str = "/v1/gateway/tool-calls";

/// How the gateway is set up.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub limits: Limits,
    /// Shared replay cache and rate limits; in-process without it.
    pub redis_url: Option<String>,
    /// Largest accepted difference between a request's time and ours.
    pub max_skew: Millis,
    /// Where tool, compensation and model calls may go.
    pub egress: crate::egress::EgressPolicy,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            limits: Limits {
                per_source: Some(limits::DEFAULT_PER_SOURCE),
                ..Limits::default()
            },
            redis_url: None,
            max_skew: Millis::from_secs(30),
            egress: crate::egress::EgressPolicy::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("AURA_REDIS_URL: {0}")]
    Redis(String),
    #[error("{0}")]
    Http(String),
}

/// One per API node.
pub struct Gateway {
    verifier: DualTokenVerifier,
    replay: ReplayCache,
    limiter: Limiter,
    limits: Limits,
    schemas: SchemaCache,
    tools: ToolClient,
    redis: Option<ConnectionManager>,
    refusals: RefusalSampler,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("limits", &self.limits)
            .field("replay", &self.replay)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Connects to Redis when configured: a URL that does not answer stops
    /// the server from starting rather than silently falling back to
    /// per-node limits.
    pub async fn connect(config: &GatewayConfig) -> Result<Gateway, GatewayError> {
        let redis = match &config.redis_url {
            None => None,
            Some(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| GatewayError::Redis(format!("`{}`: {e}", redact(url))))?;
                let conn = ConnectionManager::new(client).await.map_err(|e| {
                    GatewayError::Redis(format!("{} does not answer: {e}", redact(url)))
                })?;
                Some(conn)
            }
        };
        let (replay, limiter) = match &redis {
            Some(c) => (ReplayCache::Redis(c.clone()), Limiter::redis(c.clone())),
            None => (ReplayCache::local(), Limiter::local()),
        };
        Ok(Gateway {
            verifier: DualTokenVerifier::new(config.max_skew),
            replay,
            limiter,
            limits: config.limits,
            schemas: SchemaCache::default(),
            tools: ToolClient::new(config.egress.clone()).map_err(GatewayError::Http)?,
            redis,
            refusals: RefusalSampler::default(),
        })
    }

    /// The HTTP client tool calls go out through; the saga's
    /// compensations and the reasoners use it too.
    pub fn tool_client(&self) -> &ToolClient {
        &self.tools
    }

    /// The limiter the gateway's limits are kept in (shared through Redis
    /// when configured), for other per-source limits.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Failed DualToken checks this node has seen, by code.
    pub fn refusal_counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.refusals.counts()
    }

    /// Charges one request from `source` to the per-source limit: called
    /// before anything in the request is read.
    pub async fn admit_source(&self, source: std::net::IpAddr) -> Result<(), GatewayRefusal> {
        let Some(rate) = self.limits.per_source else {
            return Ok(());
        };
        let cell = limits::source_cell("source", source, rate);
        self.charge(std::slice::from_ref(&cell)).await
    }

    /// Charges `cells` to the limiter: refused when one is exhausted, or
    /// when the shared limiter does not answer.
    async fn charge(&self, cells: &[limits::Cell]) -> Result<(), GatewayRefusal> {
        match self.limiter.check(cells).await {
            Ok(Verdict::Allowed) => Ok(()),
            Ok(Verdict::Limited {
                scope,
                rate,
                retry_after_ms,
            }) => Err(GatewayRefusal {
                error: CallError::RateLimited {
                    scope,
                    rate: rate.to_string(),
                    retry_after_ms,
                },
                retry_after_ms: Some(retry_after_ms),
            }),
            Err(e) => {
                tracing::error!(error = %e, "rate limiter unavailable");
                Err(GatewayRefusal {
                    error: AppError::Unavailable(e.to_string()).into(),
                    retry_after_ms: None,
                })
            }
        }
    }

    /// For readiness: Redis answers (when configured).
    pub async fn ping(&self) -> Result<(), String> {
        match &self.redis {
            None => Ok(()),
            Some(c) => {
                let mut c = c.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Hides a password in a Redis URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// A tool call as an agent sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolCallEnvelope {
    /// The call; its canonical digest is the signed request's
    /// `body_digest`.
    pub call: ToolCallRequest,
    /// The agent's AgentIdentity credential.
    pub credential: AgentCredential,
    /// The mission's ExecutionToken.
    pub token: ExecutionToken,
    /// The HTTP request (`POST /v1/gateway/tool-calls`, the call's
    /// digest, a timestamp and a nonce, the credential's serial and the
    /// token's id) signed with the agent's identity key.
    pub request: SignedRequest,
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// The tool was called and answered; `result` holds what it said.
    Completed,
    /// Policy escalated: the step waits for its approval, then the same
    /// call (step and call number) may be sent again.
    AwaitingApproval,
}

/// The held step an escalated call waits on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AwaitedApproval {
    /// The step number: approvers decide `hold` = this step.
    pub hold: u32,
    pub required_level: String,
    /// Epoch milliseconds.
    pub deadline: i64,
    /// Live events of the mission, for waiting without polling.
    pub events: String,
}

/// The gateway's answer to a call that was decided.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ToolCallOutcome {
    pub status: CallStatus,
    pub mission: String,
    pub step: u32,
    pub call: u32,
    /// The key the tool received; the same on every retry of this call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The deployment the call went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub decision: DecisionRecord,
    /// `{outcome: "succeeded", status, output}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CallResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<AwaitedApproval>,
    /// True when this call had completed before and its recorded result is
    /// returned without calling the tool again.
    pub replayed: bool,
}

/// Why the gateway refused a call, or how the tool call failed: domain
/// words, which the HTTP edge maps to problems and the executor records as
/// a step's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The DualToken check failed, or the token does not allow the call.
    #[error("{0}")]
    DualToken(DualTokenError),
    /// The arguments do not match the tool's input schema.
    #[error("the arguments do not match the tool's input schema: {}", joined(.0))]
    Arguments(Vec<FieldError>),
    /// A rate limit was reached.
    #[error("the {scope} rate limit ({rate}) is reached; retry in {retry_after_ms} ms")]
    RateLimited {
        /// Which limit: agent, tool or tenant.
        scope: &'static str,
        rate: String,
        retry_after_ms: u64,
    },
    /// Policy denied the call.
    #[error("policy denied the call ({})", reasons(.0))]
    Denied(Box<DecisionRecord>),
    /// The tool was called and failed (recorded); `retry` says whether the
    /// same call may be sent again.
    #[error("the tool call failed ({}): {message}", .failure.code())]
    Failed {
        failure: aura_engine::mission::CallFailure,
        message: String,
        retry: Option<RetryState>,
    },
    #[error(transparent)]
    App(#[from] AppError),
}

/// The audit code of a call whose arguments fail the tool's schema.
pub const ARGUMENTS_INVALID: &str = "arguments-invalid";

fn reasons(decision: &DecisionRecord) -> String {
    decision
        .determining
        .iter()
        .chain(decision.errors.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a refusal goes on the record.
#[derive(Clone, Copy, Debug)]
enum Audit {
    /// The engine recorded it already, or there is nothing to record.
    No,
    /// Recorded under this code.
    Every(&'static str),
    /// A failed DualToken check: recorded under this code once per
    /// tenant, code and window ([`refusals`]).
    Sampled(&'static str),
}

/// A refused call: why, and how it goes on the record.
struct Refusal {
    error: CallError,
    audit: Audit,
    retry_after_ms: Option<u64>,
}

impl Refusal {
    fn audited(error: CallError, code: &'static str) -> Refusal {
        Refusal {
            error,
            audit: Audit::Every(code),
            retry_after_ms: None,
        }
    }
    fn dualtoken(e: DualTokenError) -> Refusal {
        Refusal {
            audit: Audit::Sampled(e.code()),
            error: CallError::DualToken(e),
            retry_after_ms: None,
        }
    }
    fn plain(error: impl Into<CallError>) -> Refusal {
        Refusal {
            error: error.into(),
            audit: Audit::No,
            retry_after_ms: None,
        }
    }
}

/// A gateway refusal as its callers receive it: why, and when the same
/// call may be sent again, if it may.
#[derive(Debug)]
pub struct GatewayRefusal {
    pub error: CallError,
    pub retry_after_ms: Option<u64>,
}

/// What the call path needs of the tool, read with the DualToken check.
struct ToolView {
    input_schema: serde_json::Value,
    timeout_ms: u64,
}

impl ToolView {
    fn of(invocation: &aura_engine::tool::ToolInvocation) -> ToolView {
        ToolView {
            input_schema: invocation.input_schema.clone(),
            timeout_ms: invocation.timeout_ms,
        }
    }
}

/// How the executor's call reaches its tool (the executor has no signed
/// request for the check to read it with).
fn executor_tool(app: &App, call: &ToolCallRequest) -> Option<ToolView> {
    app.read_local(|s| {
        s.tenant(&call.tenant)
            .and_then(|t| t.tools().get(&call.tool))
            .and_then(|spec| spec.invocation.as_ref().map(ToolView::of))
    })
}

/// What proposing a dispatch gave.
enum Dispatched {
    /// The engine's decision and, if permitted, the dispatch record.
    Events(Vec<Event>),
    /// The call had completed before: its recorded answer.
    Recorded(Box<ToolCallOutcome>),
}

/// Who a call is made for, once established: the agent, its credential
/// and the mission's token, and the actor the commands are recorded under.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The agent itself, or the runtime acting for it.
    pub actor: Actor,
    pub agent: AgentId,
    pub credential_serial: u64,
    pub token: aura_engine::ids::TokenId,
}

impl Gateway {
    /// Runs one call through the whole path, for an agent that signed it
    /// (the HTTP handler comes here).
    #[tracing::instrument(skip_all, fields(
        tenant = %envelope.call.tenant,
        mission = %envelope.call.mission,
        step = envelope.call.step,
        tool = %envelope.call.tool,
    ))]
    pub async fn call(
        &self,
        app: &App,
        envelope: &ToolCallEnvelope,
    ) -> Result<ToolCallOutcome, GatewayRefusal> {
        let result = match self.verify_envelope(app, envelope).await {
            Ok((caller, tool)) => self.govern(app, &envelope.call, &caller, tool, None).await,
            Err(refusal) => Err(refusal),
        };
        let claimed = envelope.credential.claims.agent.clone();
        self.settle(app, &envelope.call, claimed, result).await
    }

    /// The same path for the built-in executor, which runs inside this
    /// server for the mission's agent: there is no signed request to
    /// verify, but everything from the schema on applies, and the engine
    /// checks the agent's credential and the claim's token at dispatch as
    /// for any call. What `follow_up` makes of a successful result is
    /// committed with it ([`FollowUp`]).
    ///
    /// `dispatched` is the call's dispatch when it was committed already
    /// (with the step before it, after [`Gateway::check_for_executor`]):
    /// the call goes on from its events.
    #[tracing::instrument(skip_all, fields(
        tenant = %call.tenant,
        mission = %call.mission,
        step = call.step,
        tool = %call.tool,
    ))]
    pub async fn call_for_executor(
        &self,
        app: &App,
        call: &ToolCallRequest,
        caller: &Caller,
        dispatched: Option<Vec<Event>>,
        follow_up: &mut FollowUp,
    ) -> Result<ToolCallOutcome, GatewayRefusal> {
        let tool = executor_tool(app, call);
        let result = match dispatched {
            Some(events) => {
                self.carry_out(app, call, caller, tool, events, Some(follow_up))
                    .await
            }
            None => self.govern(app, call, caller, tool, Some(follow_up)).await,
        };
        self.settle(app, call, caller.agent.clone(), result).await
    }

    /// The executor's next call, checked ahead of time (schema, rate
    /// limits): its dispatch, for the executor to commit in the same entry
    /// as the step before it. `None` for a call the checks refuse, which
    /// is left to [`Gateway::call_for_executor`] to refuse, and record, as
    /// any call. A call checked ahead whose step before fails has used its
    /// share of the rate limits.
    pub async fn check_for_executor(
        &self,
        app: &App,
        call: &ToolCallRequest,
        caller: &Caller,
    ) -> Option<CommandBody> {
        let tool = executor_tool(app, call);
        self.check(call, caller, tool.as_ref()).await.ok()
    }

    /// Records a refusal that needs it, then answers.
    async fn settle(
        &self,
        app: &App,
        call: &ToolCallRequest,
        claimed_agent: AgentId,
        result: Result<ToolCallOutcome, Refusal>,
    ) -> Result<ToolCallOutcome, GatewayRefusal> {
        match result {
            Ok(outcome) => Ok(outcome),
            Err(refusal) => {
                let record = match refusal.audit {
                    Audit::No => None,
                    Audit::Every(code) => Some((code, refusal.error.to_string())),
                    Audit::Sampled(code) => self
                        .refusals
                        .sample(&call.tenant, code, std::time::Instant::now())
                        .map(|unrecorded| (code, sampled(&refusal.error, unrecorded))),
                };
                if let Some((code, reason)) = record {
                    let body = CommandBody::RefuseToolCall {
                        mission: call.mission.clone(),
                        step: call.step,
                        tool: call.tool.clone(),
                        claimed_agent: Some(claimed_agent),
                        code: code.to_owned(),
                        reason: truncate(&reason, 2000),
                    };
                    // Answered only once the refusal is on record.
                    if let Err(e) = app.propose(&call.tenant, Actor::Runtime, body).await {
                        return Err(GatewayRefusal {
                            error: e.into(),
                            retry_after_ms: None,
                        });
                    }
                }
                Err(GatewayRefusal {
                    error: refusal.error,
                    retry_after_ms: refusal.retry_after_ms,
                })
            }
        }
    }

    /// DualToken and the replay cache: who is calling.
    async fn verify_envelope(
        &self,
        app: &App,
        envelope: &ToolCallEnvelope,
    ) -> Result<(Caller, Option<ToolView>), Refusal> {
        let now = crate::time::now();
        let (principal, nonce, tool) = self.verify(app, envelope, now)?;
        let first = self.replay.first_use(&nonce, now).await.map_err(|e| {
            tracing::error!(error = %e, "replay cache unavailable");
            Refusal::plain(AppError::Unavailable(e.to_string()))
        })?;
        if !first {
            return Err(Refusal::dualtoken(DualTokenError::ReplayedNonce));
        }
        let caller = Caller {
            actor: Actor::Agent(principal.agent.clone()),
            agent: principal.agent,
            credential_serial: principal.credential_serial,
            token: principal.token,
        };
        Ok((caller, tool))
    }

    fn verify(
        &self,
        app: &App,
        envelope: &ToolCallEnvelope,
        now: Timestamp,
    ) -> Result<(VerifiedPrincipal, NonceUse, Option<ToolView>), Refusal> {
        let call = &envelope.call;
        let claims = &envelope.request.claims;
        let body_digest = call.body_digest().map_err(|e| {
            Refusal::plain(AppError::invalid(
                "/call",
                format!("cannot be encoded: {e}"),
            ))
        })?;
        // Copy out what the check needs and verify outside the state's read
        // lock: an Ed25519 verification per call must not hold up applying
        // commands. (The engine checks revocation again when it dispatches.)
        let serial = envelope.credential.claims.serial;
        let read = app.read_local(|s| {
            let t = s.tenant(&call.tenant)?;
            let revoked = t
                .credentials()
                .get(&serial)
                .is_some_and(|c| c.revoked.is_some());
            let trust = StaticTrust {
                keys: t.keyring(),
                revoked: if revoked {
                    BTreeSet::from([serial])
                } else {
                    BTreeSet::new()
                },
            };
            let tool = t
                .tools()
                .get(&call.tool)
                .and_then(|spec| spec.invocation.as_ref().map(ToolView::of));
            Some((trust, tool))
        });
        // A tenant that does not exist has no chain to record anything in,
        // and is refused as a credential its key does not verify would
        // be: an anonymous caller learns nothing of which tenants exist.
        let (trust, tool) = read.ok_or_else(|| {
            Refusal::plain(CallError::DualToken(DualTokenError::BadSignature(
                Signed::Credential,
            )))
        })?;
        let bound = claims.method == "POST"
            && claims.path == TOOL_CALLS_PATH
            && claims.body_digest == body_digest;
        let verified = if bound {
            self.verifier.verify_signed(
                &trust,
                &envelope.request,
                &envelope.credential,
                &envelope.token,
                call.as_checked(),
                now,
            )
        } else {
            // The signature is over another request than this one.
            Err(DualTokenError::BadSignature(Signed::Request))
        };
        verified
            .map(|(principal, nonce)| (principal, nonce, tool))
            .map_err(Refusal::dualtoken)
    }

    /// Everything after the caller is established: schema, rate limits,
    /// the engine's decision and dispatch, the call, its result.
    async fn govern(
        &self,
        app: &App,
        call: &ToolCallRequest,
        caller: &Caller,
        tool: Option<ToolView>,
        follow_up: Option<&mut FollowUp>,
    ) -> Result<ToolCallOutcome, Refusal> {
        let dispatch = self.check(call, caller, tool.as_ref()).await?;
        match self.dispatch(app, call, caller, dispatch).await? {
            Dispatched::Events(events) => {
                self.carry_out(app, call, caller, tool, events, follow_up)
                    .await
            }
            Dispatched::Recorded(outcome) => Ok(*outcome),
        }
    }

    /// The checks before the engine sees the call: the tool's schema and
    /// the rate limits. Passed, they give the dispatch to propose.
    async fn check(
        &self,
        call: &ToolCallRequest,
        caller: &Caller,
        tool: Option<&ToolView>,
    ) -> Result<CommandBody, Refusal> {
        if let Some(tool) = tool {
            let errors = self.schemas.violations(&tool.input_schema, &call.arguments);
            if !errors.is_empty() {
                return Err(Refusal::audited(
                    CallError::Arguments(errors),
                    ARGUMENTS_INVALID,
                ));
            }
        }
        let cells = self.limits.cells(
            call.tenant.as_str(),
            caller.agent.as_str(),
            call.tool.as_str(),
        );
        self.charge(&cells).await.map_err(|r| Refusal {
            error: r.error,
            audit: Audit::No,
            retry_after_ms: r.retry_after_ms,
        })?;

        Ok(CommandBody::DispatchToolCall {
            mission: call.mission.clone(),
            step: call.step,
            call: call.call,
            tool: call.tool.clone(),
            arguments: call.arguments.clone(),
            credential_serial: caller.credential_serial,
            token: caller.token.clone(),
        })
    }

    /// Proposes the dispatch: the engine's decision on the call and, when
    /// it permits, the record that it is sent.
    async fn dispatch(
        &self,
        app: &App,
        call: &ToolCallRequest,
        caller: &Caller,
        dispatch: CommandBody,
    ) -> Result<Dispatched, Refusal> {
        let events = match app
            .propose(&call.tenant, caller.actor.clone(), dispatch)
            .await
        {
            Ok(events) => events,
            Err(AppError::Refused {
                rejection: Rejection::CallAlreadyCompleted { .. },
                ..
            }) => {
                return self
                    .recorded(app, call)
                    .map(|o| Dispatched::Recorded(Box::new(o)));
            }
            Err(
                e @ AppError::Refused {
                    rejection: Rejection::RetryNotDue { not_before, .. },
                    ..
                },
            ) => {
                return Err(Refusal {
                    error: e.into(),
                    audit: Audit::No,
                    retry_after_ms: Some(wait_until(not_before)),
                });
            }
            Err(e) => return Err(Refusal::plain(e)),
        };
        Ok(Dispatched::Events(events))
    }

    /// What the dispatch's events say: a denial or an escalation is the
    /// answer; a permitted call is made and its result committed.
    async fn carry_out(
        &self,
        app: &App,
        call: &ToolCallRequest,
        caller: &Caller,
        tool: Option<ToolView>,
        events: Vec<Event>,
        follow_up: Option<&mut FollowUp>,
    ) -> Result<ToolCallOutcome, Refusal> {
        let actor = caller.actor.clone();
        let decided = events.iter().find_map(|e| match e {
            Event::ToolCallDecided { decision, .. } => Some(decision.clone()),
            _ => None,
        });
        let Some(decision) = decided else {
            return Err(Refusal::plain(AppError::Internal(
                "the engine decided nothing".into(),
            )));
        };
        let mut outcome = ToolCallOutcome {
            status: CallStatus::AwaitingApproval,
            mission: call.mission.to_string(),
            step: call.step,
            call: call.call,
            idempotency_key: None,
            target: None,
            decision: decision.clone(),
            result: None,
            approval: None,
            replayed: false,
        };
        match decision.decision {
            Decision::Deny => {
                return Err(Refusal::plain(CallError::Denied(Box::new(decision))));
            }
            Decision::Escalate => {
                outcome.approval = self.awaited(app, call);
                return Ok(outcome);
            }
            Decision::Permit => {}
        }
        let Some((key, target, endpoint)) = events.iter().find_map(|e| match e {
            Event::ToolCallDispatched {
                idempotency_key,
                target,
                endpoint,
                ..
            } => Some((idempotency_key.clone(), target.clone(), endpoint.clone())),
            _ => None,
        }) else {
            return Err(Refusal::plain(AppError::Internal(
                "a permitted call was not dispatched".into(),
            )));
        };
        let timeout_ms = tool.map_or(DEFAULT_CALL_TIMEOUT_MS, |t| t.timeout_ms);
        let tenant = call.tenant.to_string();
        let mission = call.mission.to_string();
        let result = self
            .tools
            .call(
                &endpoint,
                timeout_ms,
                &ToolRequestBody {
                    tenant: &tenant,
                    mission: &mission,
                    step: call.step,
                    call: call.call,
                    tool: call.tool.as_str(),
                    idempotency_key: &key,
                    arguments: &call.arguments,
                },
            )
            .await;
        let (result, retry) = self
            .complete(app, call, actor, result, follow_up)
            .await
            .map_err(Refusal::plain)?;
        outcome.status = CallStatus::Completed;
        outcome.idempotency_key = Some(key);
        outcome.target = Some(target);
        finish(outcome, result, retry)
    }

    /// Commits the result, with what `follow_up` makes of a successful
    /// one; an answer too large for the record is recorded as that failure
    /// instead.
    async fn complete(
        &self,
        app: &App,
        call: &ToolCallRequest,
        actor: Actor,
        result: CallResult,
        follow_up: Option<&mut FollowUp>,
    ) -> Result<(CallResult, Option<RetryState>), AppError> {
        let body = |result: CallResult| CommandBody::CompleteToolCall {
            mission: call.mission.clone(),
            step: call.step,
            call: call.call,
            result,
        };
        let retry_of = |events: Vec<Event>| {
            events.into_iter().find_map(|e| match e {
                Event::ToolCallCompleted { retry, .. } => retry,
                _ => None,
            })
        };
        let then = follow_up.and_then(|f| f.take_for(&result).map(|bodies| (f, bodies)));
        let completed = match then {
            Some((follow_up, then)) => {
                let mut bodies = Vec::with_capacity(1 + then.len());
                bodies.push(body(result.clone()));
                bodies.extend(then);
                complete_then(app, &call.tenant, actor.clone(), bodies, follow_up).await
            }
            None => {
                app.propose(&call.tenant, actor.clone(), body(result.clone()))
                    .await
            }
        };
        match completed {
            Ok(events) => Ok((result, retry_of(events))),
            Err(AppError::Refused {
                rejection: Rejection::ResultTooLarge { max },
                ..
            }) => {
                let failed = CallResult::unrecordable("the tool's answer", max);
                let events = app
                    .propose(&call.tenant, actor, body(failed.clone()))
                    .await?;
                Ok((failed, retry_of(events)))
            }
            Err(e) => Err(e),
        }
    }

    /// The recorded result of a call that completed before.
    fn recorded(&self, app: &App, call: &ToolCallRequest) -> Result<ToolCallOutcome, Refusal> {
        let found = app.read_local(|s| {
            let m = s.tenant(&call.tenant)?.missions().get(&call.mission)?;
            let record = m.tool_call(call.step, call.call)?.clone();
            let decision = m
                .calls()
                .iter()
                .rev()
                .find(|d| d.step == call.step && d.tool == call.tool)?
                .decision
                .clone();
            Some((record, decision))
        });
        let (record, decision) = found.ok_or_else(|| {
            Refusal::plain(AppError::Internal(
                "the completed call's record is not on this node yet".into(),
            ))
        })?;
        let result = record
            .result
            .clone()
            .ok_or_else(|| Refusal::plain(AppError::Internal("no recorded result".into())))?;
        let retry = record.retry.clone();
        finish(
            ToolCallOutcome {
                status: CallStatus::Completed,
                mission: call.mission.to_string(),
                step: call.step,
                call: call.call,
                idempotency_key: Some(record.idempotency_key),
                target: Some(record.target),
                decision,
                result: None,
                approval: None,
                replayed: true,
            },
            result,
            retry,
        )
    }

    fn awaited(&self, app: &App, call: &ToolCallRequest) -> Option<AwaitedApproval> {
        app.read_local(|s| {
            let m = s.tenant(&call.tenant)?.missions().get(&call.mission)?;
            let hold = m.holds().get(&call.step)?;
            Some(AwaitedApproval {
                hold: call.step,
                required_level: hold.approval.required_level.to_string(),
                deadline: hold.approval.deadline.0,
                events: format!(
                    "/v1/tenants/{}/missions/{}/events",
                    call.tenant, call.mission
                ),
            })
        })
    }
}

/// Proposes a completion and its follow-ups as one sequence: answers for
/// the completion as a single proposal would, and records in `follow_up`
/// what the rest gave.
async fn complete_then(
    app: &App,
    tenant: &aura_engine::ids::TenantId,
    actor: Actor,
    bodies: Vec<CommandBody>,
    follow_up: &mut FollowUp,
) -> Result<Vec<Event>, AppError> {
    let applied = app.propose_sequence(tenant, actor, bodies).await?;
    let mut events = applied.events.into_iter();
    match (events.next(), applied.refused) {
        (Some(completed), refused) => {
            follow_up.record(SequenceApplied {
                events: events.collect(),
                refused,
            });
            Ok(completed)
        }
        (None, Some(refused)) => Err(refused.into()),
        (None, None) => Err(AppError::Internal(
            "the completion produced no outcome".into(),
        )),
    }
}

/// A succeeded call is the outcome; a failed one is refused with the
/// failure and whether the same call may be sent again, recorded all the
/// same.
fn finish(
    mut outcome: ToolCallOutcome,
    result: CallResult,
    retry: Option<RetryState>,
) -> Result<ToolCallOutcome, Refusal> {
    match &result {
        CallResult::Succeeded { .. } => {
            outcome.result = Some(result);
            Ok(outcome)
        }
        CallResult::Failed {
            failure, message, ..
        } => {
            let retry_after_ms = match &retry {
                Some(RetryState::Scheduled { not_before, .. }) => Some(wait_until(*not_before)),
                _ => None,
            };
            Err(Refusal {
                error: CallError::Failed {
                    failure: *failure,
                    message: message.clone(),
                    retry,
                },
                audit: Audit::No,
                retry_after_ms,
            })
        }
    }
}

/// Milliseconds from now until `t` (at least 1, for a `Retry-After`).
fn wait_until(t: Timestamp) -> u64 {
    u64::try_from(t.as_millis() - crate::time::now().as_millis())
        .unwrap_or(0)
        .max(1)
}

/// The recorded reason of a sampled refusal.
fn sampled(error: &CallError, unrecorded: u64) -> String {
    if unrecorded == 0 {
        error.to_string()
    } else {
        format!(
            "{error} ({unrecorded} refusals like it were counted but not recorded since the last that was)"
        )
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
