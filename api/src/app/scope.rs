//! Who is asking, and what they may reach. Every use case takes one of
//! these, already authenticated by a front door: [`TenantScope<R>`] for a
//! tenant's resources with role `R`, or [`PlatformScope`] for tenant
//! management. A scope is made only by [`TenantScope::authorize`], which
//! checks the tenant and the role, and tenant state is read only through
//! the scope, so a use case cannot reach another tenant's data.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use aura_engine::Actor;
use aura_engine::directory::{KeyId, PLATFORM_TENANT};
use aura_engine::ids::{TenantId, UserId};
use aura_engine::machine::TenantState;

use super::role::Role;
use super::{App, AppError};

/// Who is calling, as a front door established it (an API key today).
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: KeyId,
    /// `None` for a platform key.
    pub tenant: Option<TenantId>,
    /// The directory user the key acts for: a user of the key's tenant, or
    /// of the platform's directory for a platform key.
    pub user: Option<UserId>,
    pub roles: BTreeSet<Role>,
}

impl Caller {
    /// Who the engine records as having asked, in a tenant's chain: the
    /// key's user, or the platform for a platform key.
    pub fn actor(&self) -> Actor {
        match (&self.tenant, &self.user) {
            (Some(_), Some(u)) => Actor::User(u.clone()),
            _ => Actor::Platform,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        role.held_by(&self.roles)
    }
}

/// A role a use case requires; `None` admits any role of the tenant (for
/// reads every member may make).
pub trait Requirement: Send + Sync + 'static {
    const ROLE: Option<Role>;
}

macro_rules! requirement {
    ($($name:ident => $role:expr),* $(,)?) => {$(
        #[derive(Debug)]
        pub struct $name;
        impl Requirement for $name {
            const ROLE: Option<Role> = $role;
        }
    )*};
}

requirement! {
    Member => None,
    Admin => Some(Role::Admin),
    Operator => Some(Role::Operator),
    Approver => Some(Role::Approver),
    Auditor => Some(Role::Auditor),
    AgentManager => Some(Role::AgentManager),
    Worker => Some(Role::Worker),
}

/// Access to one tenant with role `R`.
#[derive(Debug)]
pub struct TenantScope<R> {
    pub caller: Caller,
    pub tenant: TenantId,
    _role: PhantomData<R>,
}

impl<R: Requirement> TenantScope<R> {
    /// The caller's access to the tenant named `raw`: a tenant that is not
    /// the caller's reads exactly like one that does not exist. A tenant
    /// this node does not know yet is looked for again once it has caught
    /// up with the cluster, so a key minted with a new tenant works on
    /// every node at once.
    pub async fn authorize(app: &App, caller: Caller, raw: &str) -> Result<Self, AppError> {
        let hidden = || AppError::not_found("tenant", raw);
        let tenant = match TenantId::new(raw.to_owned()) {
            Ok(t) if caller.tenant.as_ref() == Some(&t) => t,
            _ => return Err(hidden()),
        };
        let known = |app: &App| app.read_local(|s| s.tenant(&tenant).is_some());
        if !known(app) {
            app.engine().catch_up().await?;
            if !known(app) {
                return Err(hidden());
            }
        }
        if let Some(role) = R::ROLE
            && !caller.has(role)
        {
            return Err(AppError::Forbidden(format!(
                "this API key lacks the `{role}` role"
            )));
        }
        Ok(TenantScope {
            caller,
            tenant,
            _role: PhantomData,
        })
    }
}

impl<R> TenantScope<R> {
    pub fn actor(&self) -> Actor {
        self.caller.actor()
    }

    /// Reads this tenant's state as this node has applied it: the one way
    /// a use case reads tenant state. How fresh that is, the front door
    /// decided before calling (the REST edge catches up with the cluster's
    /// read index before every read unless asked for a stale one:
    /// `crate::http::consistency`).
    pub fn read<T>(&self, app: &App, f: impl FnOnce(&TenantState) -> T) -> Result<T, AppError> {
        app.read_local(|s| s.tenant(&self.tenant).map(f))
            .ok_or_else(|| AppError::not_found("tenant", self.tenant.as_str()))
    }
}

/// Platform administration: a platform key with `platform_admin`.
#[derive(Debug)]
pub struct PlatformScope {
    pub caller: Caller,
}

impl PlatformScope {
    /// The platform's own tenant (its keys' directory and their audit
    /// chain), read as an auditor would read a tenant's.
    pub fn platform_tenant(&self) -> TenantScope<super::scope::Auditor> {
        TenantScope {
            caller: self.caller.clone(),
            tenant: TenantId::new(PLATFORM_TENANT).expect("the platform's id is a tenant id"),
            _role: PhantomData,
        }
    }

    pub fn authorize(caller: Caller) -> Result<PlatformScope, AppError> {
        if caller.tenant.is_some() || !caller.has(Role::PlatformAdmin) {
            return Err(AppError::Forbidden(
                "only a platform key with the `platform_admin` role manages tenants".into(),
            ));
        }
        Ok(PlatformScope { caller })
    }
}
