//! A namespace's editable configuration, part by part. Every part has a
//! version; a change names the version it replaces, and the engine checks
//! that version when it applies the change, so two admins never overwrite
//! each other unseen however many nodes propose at once.

use aura_engine::Digest;
use aura_engine::ids::NamespaceId;
use aura_engine::machine::{CommandBody, ConfigPart, Namespace, Precondition, Rejection};
use aura_engine::policy::authority::AuthorityConfig;
use aura_engine::policy::canary::Canary;
use aura_engine::policy::reasoner::ReasonerConfig;
use aura_engine::policy::routing::RoutingTable;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::scope::{Admin, TenantScope};
use crate::app::{App, AppError};

/// A configuration part as read, with the version a change must name.
#[derive(Debug)]
pub struct Versioned<V> {
    pub value: V,
    pub version: Digest,
}

/// Which version of a part a change replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Whatever is there now.
    Any,
    Version(Digest),
    /// Something that names no version: it cannot be the current one.
    Unrecognised,
}

/// The namespace's policy releases.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NamespacePolicy {
    /// The stable bundle's version.
    pub stable: Option<String>,
    /// The running canary release with its shadow statistics and the
    /// analysis made before it started.
    pub canary: Option<Canary>,
}

/// One part of a namespace's configuration: how to read it, and the
/// command that replaces it.
pub trait Part {
    const PART: ConfigPart;
    type View: Serialize;
    fn view(n: &Namespace) -> Self::View;
}

#[derive(Debug)]
pub struct Releases;
#[derive(Debug)]
pub struct Authority;
#[derive(Debug)]
pub struct Routing;
#[derive(Debug)]
pub struct Reasoner;

impl Part for Releases {
    const PART: ConfigPart = ConfigPart::Releases;
    type View = NamespacePolicy;
    fn view(n: &Namespace) -> NamespacePolicy {
        NamespacePolicy {
            stable: n.policy.stable.map(|d| d.to_hex()),
            canary: n.policy.canary.clone(),
        }
    }
}

impl Part for Authority {
    const PART: ConfigPart = ConfigPart::Authority;
    type View = AuthorityConfig;
    fn view(n: &Namespace) -> AuthorityConfig {
        n.authority.clone()
    }
}

impl Part for Routing {
    const PART: ConfigPart = ConfigPart::Routing;
    type View = RoutingTable;
    fn view(n: &Namespace) -> RoutingTable {
        n.routing.clone()
    }
}

impl Part for Reasoner {
    const PART: ConfigPart = ConfigPart::Reasoner;
    type View = ReasonerConfig;
    fn view(n: &Namespace) -> ReasonerConfig {
        n.reasoner.clone()
    }
}

/// A change to the namespace's policy releases.
#[derive(Debug)]
pub enum Release {
    /// Sets the stable bundle (no canary may be running).
    Stable(Digest),
    /// Starts a canary for a share of new missions, in basis points.
    Canary(Digest, u32),
    /// The canary becomes the stable bundle.
    Promote,
    /// The stable bundle decides everything again.
    Rollback,
}

fn namespace_of<S, V>(
    app: &App,
    scope: &TenantScope<S>,
    ns: &NamespaceId,
    f: impl FnOnce(&Namespace) -> V,
) -> Result<V, AppError> {
    scope
        .read(app, |t| t.namespaces().get(ns).map(f))?
        .ok_or_else(|| AppError::not_found("namespace", ns.as_str()))
}

/// Part `P` of the namespace's configuration, with its version: for
/// every member of the tenant.
pub fn read<P: Part, S>(
    app: &App,
    scope: &TenantScope<S>,
    ns: &NamespaceId,
) -> Result<Versioned<P::View>, AppError> {
    namespace_of(app, scope, ns, |n| Versioned {
        value: P::view(n),
        version: n.config_version(P::PART),
    })
}

/// Proposes `body` if part `P` is still at the version `expected`
/// names (`None`: the caller named none, which a change must), and
/// returns the part as now applied.
async fn change<P: Part>(
    app: &App,
    scope: &TenantScope<Admin>,
    ns: &NamespaceId,
    expected: Option<Expected>,
    body: CommandBody,
) -> Result<Versioned<P::View>, AppError> {
    let current = namespace_of(app, scope, ns, |n| n.config_version(P::PART))?;
    let precondition = match expected {
        None => return Err(AppError::VersionRequired { current }),
        Some(Expected::Unrecognised) => return Err(AppError::VersionMismatch { current }),
        Some(Expected::Any) => None,
        Some(Expected::Version(version)) => Some(Precondition::ConfigVersion {
            namespace: ns.clone(),
            part: P::PART,
            version,
        }),
    };
    app.propose_if(&scope.tenant, scope.actor(), body, precondition)
        .await?;
    read::<P, Admin>(app, scope, ns)
}

pub async fn release(
    app: &App,
    scope: &TenantScope<Admin>,
    ns: &NamespaceId,
    expected: Option<Expected>,
    change_to: Release,
) -> Result<Versioned<NamespacePolicy>, AppError> {
    let namespace = ns.clone();
    let body = match change_to {
        Release::Stable(version) => CommandBody::SetStableBundle { namespace, version },
        Release::Canary(version, basis_points) => {
            if !(1..=10_000).contains(&basis_points) {
                return Err(AppError::invalid("/basis_points", "must be 1 to 10000"));
            }
            CommandBody::StartCanary {
                namespace,
                version,
                basis_points,
            }
        }
        Release::Promote => CommandBody::PromoteCanary { namespace },
        Release::Rollback => CommandBody::RollbackCanary { namespace },
    };
    change::<Releases>(app, scope, ns, expected, body).await
}

/// A part replaced whole by a value of its own type: authority, routing,
/// the reasoner.
pub trait Replaceable: Part<View = Self::Value> {
    type Value;
    /// The engine's own check of a value, which it runs again on apply.
    fn check(value: &Self::Value) -> Result<(), String>;
    /// The URLs the value sends calls to, by JSON pointer, for the egress
    /// policy.
    fn destinations(_value: &Self::Value) -> Vec<(String, &str)> {
        Vec::new()
    }
    fn command(namespace: NamespaceId, value: Self::Value) -> CommandBody;
}

impl Replaceable for Authority {
    type Value = AuthorityConfig;
    fn check(config: &AuthorityConfig) -> Result<(), String> {
        config.validate()
    }
    fn command(namespace: NamespaceId, config: AuthorityConfig) -> CommandBody {
        CommandBody::SetAuthority { namespace, config }
    }
}

impl Replaceable for Routing {
    type Value = RoutingTable;
    fn check(routing: &RoutingTable) -> Result<(), String> {
        routing.validate()
    }
    fn command(namespace: NamespaceId, routing: RoutingTable) -> CommandBody {
        CommandBody::SetRouting { namespace, routing }
    }
}

impl Replaceable for Reasoner {
    type Value = ReasonerConfig;
    fn check(reasoner: &ReasonerConfig) -> Result<(), String> {
        reasoner.validate()
    }
    fn destinations(reasoner: &ReasonerConfig) -> Vec<(String, &str)> {
        reasoner
            .model()
            .map(|m| ("/url".to_owned(), m.url.as_str()))
            .into_iter()
            .collect()
    }
    fn command(namespace: NamespaceId, reasoner: ReasonerConfig) -> CommandBody {
        CommandBody::SetReasoner {
            namespace,
            reasoner,
        }
    }
}

/// Replaces part `P` with `value`. The value is checked before the
/// version, as the engine checks it again on apply: a caller learns what
/// is wrong with what they sent before learning that someone else changed
/// the part meanwhile.
pub async fn replace<P: Replaceable>(
    app: &App,
    scope: &TenantScope<Admin>,
    ns: &NamespaceId,
    expected: Option<Expected>,
    value: P::Value,
) -> Result<Versioned<P::Value>, AppError> {
    P::check(&value).map_err(Rejection::BadConfig)?;
    app.check_destinations(P::destinations(&value))?;
    change::<P>(app, scope, ns, expected, P::command(ns.clone(), value)).await
}
