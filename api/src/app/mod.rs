//! The application layer: each use case is one function here, taking an
//! authenticated scope ([`scope`]) and returning domain values or an
//! [`AppError`]. REST handlers, the runtime and every other front door
//! call these; none of them holds business logic, and nothing here knows
//! HTTP.
//!
//! - [`engine`]: the small trait through which use cases and the runtime
//!   propose commands and read state;
//! - [`scope`]: who is asking and which tenant they may reach;
//! - [`error`]: what a use case can fail with;
//! - [`role`]: what a caller may do;
//! - [`tenants`]: tenants, created by the platform;
//! - [`directory`]: users, groups and memberships;
//! - [`keys`]: API keys and their format;
//! - [`missions`]: create, plan, list, read, cancel; execution tokens;
//! - [`events`]: a mission's live feed;
//! - [`agents`]: agents and their credentials;
//! - [`approvals`]: approvers' inboxes and votes;
//! - [`audit`]: the audit chain, its proofs and its export;
//! - [`namespaces`]: a tenant's namespaces;
//! - [`policy`]: Cedar bundles and each namespace's configuration;
//! - [`tools`]: the tool registry;
//! - [`text`]: the rule for free texts, and its schema;
//! - [`work`]: the worker protocol (claim, heartbeat, report).

pub mod adopt;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod directory;
pub mod engine;
pub mod error;
pub mod events;
pub mod keys;
pub mod missions;
pub mod namespaces;
pub mod platform;
pub mod policy;
pub mod role;
pub mod scope;
pub mod secrets;
pub mod signing_keys;
pub mod tenants;
pub mod text;
pub mod tools;
pub mod work;

use std::sync::Arc;

use aura_engine::Actor;
use aura_engine::ids::TenantId;
use aura_engine::machine::{Command, CommandBody, EngineState, Event, Precondition};
use aura_raft::{Applied, SequenceApplied};

pub use self::engine::Engine;
pub use self::error::{AppError, FieldError};
use crate::gateway::Gateway;
use crate::store::Store;
use crate::time;

/// What every use case works with: the replicated engine, the SQL store
/// and the Tool Gateway. Cheap to clone.
#[derive(Clone)]
pub struct App {
    engine: Arc<dyn Engine>,
    store: Store,
    gateway: Arc<Gateway>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn new(engine: Arc<dyn Engine>, store: Store, gateway: Arc<Gateway>) -> App {
        App {
            engine,
            store,
            gateway,
        }
    }

    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Refuses, before anything is recorded, URLs no call could be made
    /// to and those the egress policy can judge without resolving a name
    /// (`(JSON pointer, URL)` pairs); the rest are judged at each call.
    pub fn check_destinations<'u>(
        &self,
        urls: impl IntoIterator<Item = (String, &'u str)>,
    ) -> Result<(), AppError> {
        let egress = self.gateway.tool_client().egress();
        let errors: Vec<FieldError> = urls
            .into_iter()
            .filter_map(|(pointer, url)| {
                let detail = match unreadable(url) {
                    Some(why) => why,
                    None => egress.check_url(url).err()?.to_string(),
                };
                Some(FieldError { pointer, detail })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid(errors))
        }
    }

    /// Reads this node's applied state now, without waiting: for the
    /// runtime's scans and for checks that a later command re-checks.
    pub fn read_local<R>(&self, f: impl FnOnce(&EngineState) -> R) -> R {
        engine::read_local(self.engine(), f)
    }

    /// Proposes a command for `tenant`, stamped with the time now, and
    /// returns its events once applied.
    pub async fn propose(
        &self,
        tenant: &TenantId,
        actor: Actor,
        body: CommandBody,
    ) -> Result<Vec<Event>, AppError> {
        self.propose_if(tenant, actor, body, None).await
    }

    /// [`App::propose`] that the engine applies only if `precondition`
    /// still holds when the command is applied.
    pub async fn propose_if(
        &self,
        tenant: &TenantId,
        actor: Actor,
        body: CommandBody,
        precondition: Option<Precondition>,
    ) -> Result<Vec<Event>, AppError> {
        let cmd = stamped(tenant, time::now(), actor, body, precondition);
        match self.engine.propose(cmd).await? {
            Applied::Events(events) => Ok(events),
            Applied::Refused(r) => Err(r.into()),
            Applied::Nothing | Applied::Sequence(_) => {
                Err(AppError::Internal("the command produced no outcome".into()))
            }
        }
    }

    /// Proposes `bodies` for `tenant` as one log entry: applied back to
    /// back, nothing else between them, each as it would be alone (its own
    /// audit entry), all stamped with the time now. Returns the events of
    /// each command applied and the refusal that ended the sequence, if
    /// one did; the commands after it were not applied. For a worker with
    /// several commands ready at once, one replication round instead of
    /// one each.
    pub async fn propose_sequence(
        &self,
        tenant: &TenantId,
        actor: Actor,
        bodies: Vec<CommandBody>,
    ) -> Result<SequenceApplied, AppError> {
        let at = time::now();
        let cmds = bodies
            .into_iter()
            .map(|body| stamped(tenant, at, actor.clone(), body, None))
            .collect();
        self.engine
            .propose_sequence(cmds)
            .await?
            .into_sequence()
            .ok_or_else(|| AppError::Internal("the commands produced no outcome".into()))
    }

    /// [`App::propose_sequence`] for a use case that needs every command
    /// applied: a refusal is its error, marked as having taken effect (in
    /// part) when commands before it were applied, just as a cluster error
    /// after which they may have been.
    pub async fn propose_all(
        &self,
        tenant: &TenantId,
        actor: Actor,
        bodies: Vec<CommandBody>,
    ) -> Result<Vec<Vec<Event>>, AppError> {
        error::all_applied(self.propose_sequence(tenant, actor, bodies).await?)
    }
}

/// Why `url` is no URL a call can be made to, if it is not: an
/// `http://` or `https://` URI with a host. (The engine checks only the
/// scheme and the length; versions before this check stored such URLs,
/// and replaying them must not change.)
fn unreadable(url: &str) -> Option<String> {
    let readable = url.parse::<hyper::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    });
    (!readable).then(|| format!("`{url}` is not an http:// or https:// URL with a host"))
}

/// The command `body` of `tenant`'s, accepted by this node at `at`.
fn stamped(
    tenant: &TenantId,
    at: aura_engine::Timestamp,
    actor: Actor,
    body: CommandBody,
    precondition: Option<Precondition>,
) -> Command {
    Command {
        tenant: tenant.clone(),
        at,
        actor,
        body,
        precondition,
    }
}
