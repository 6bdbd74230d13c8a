//! The state digest (format 3). A tenant's secrets and directory came
//! after the format: a state none of whose tenants holds either is
//! digested exactly as before them, so snapshots written by earlier
//! versions still restore against their digests. A state with secrets
//! but no directory is digested as the version that brought secrets did,
//! and one with a directory under a domain of its own, each tenant with
//! its secrets and directory (the canonical encoding is positional, so a
//! field cannot be left out only sometimes). A state in which some tenant
//! rotated its signing key has a domain of its own again, each tenant
//! with its retired keys besides.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::AuditLog;
use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::directory::Directory;
use crate::identity::{RetiredKey, TenantKey};
use crate::ids::{AgentId, NamespaceId, TenantId, ToolName};
use crate::machine::missions::Missions;
use crate::machine::state::{
    AgentRecord, CredentialRecord, EngineState, Namespace, STATE_DOMAIN, TenantState,
};
use crate::machine::tokens::Tokens;
use crate::policy::bundle::BundleSource;
use crate::secret::{SecretName, SecretRecord};
use crate::time::Timestamp;
use crate::tool::ToolSpec;

const STATE_WITH_SECRETS_DOMAIN: Domain = Domain::new("aura.engine-state/3+secrets");
const STATE_WITH_DIRECTORY_DOMAIN: Domain = Domain::new("aura.engine-state/3+directory");
const STATE_WITH_KEYS_DOMAIN: Domain = Domain::new("aura.engine-state/3+keys");

#[derive(Serialize)]
pub(super) struct State<'a, T> {
    pub(super) tenants: BTreeMap<&'a TenantId, T>,
}

/// A tenant's fields in the order `TenantState` declares them, but its
/// secrets, with its missions as `M` says: whole (format 2) or by their
/// digests (format 3, `Missions`' own encoding).
#[derive(Serialize)]
pub(super) struct Tenant<'a, M> {
    id: &'a TenantId,
    display_name: &'a str,
    created_at: Timestamp,
    clock: Timestamp,
    key: &'a TenantKey,
    namespaces: &'a BTreeMap<NamespaceId, Namespace>,
    agents: &'a BTreeMap<AgentId, AgentRecord>,
    credentials: &'a BTreeMap<u64, CredentialRecord>,
    missions: M,
    tokens: &'a Tokens,
    bundles: &'a BTreeMap<Digest, BundleSource>,
    tools: &'a BTreeMap<ToolName, ToolSpec>,
    audit: &'a AuditLog,
}

impl<'a, M> Tenant<'a, M> {
    pub(super) fn of(t: &'a TenantState, missions: M) -> Self {
        Tenant {
            id: &t.id,
            display_name: &t.display_name,
            created_at: t.created_at,
            clock: t.clock,
            key: &t.key,
            namespaces: &t.namespaces,
            agents: &t.agents,
            credentials: &t.credentials,
            missions,
            tokens: &t.tokens,
            bundles: &t.bundles,
            tools: &t.tools,
            audit: &t.audit,
        }
    }
}

#[derive(Serialize)]
struct TenantWithSecrets<'a> {
    tenant: Tenant<'a, &'a Missions>,
    secrets: &'a BTreeMap<SecretName, SecretRecord>,
}

#[derive(Serialize)]
struct TenantWithDirectory<'a> {
    tenant: Tenant<'a, &'a Missions>,
    secrets: &'a BTreeMap<SecretName, SecretRecord>,
    directory: &'a Directory,
}

#[derive(Serialize)]
struct TenantWithKeys<'a> {
    tenant: Tenant<'a, &'a Missions>,
    secrets: &'a BTreeMap<SecretName, SecretRecord>,
    directory: &'a Directory,
    retired_keys: &'a [RetiredKey],
}

/// The digest of `state` under `domain`, each tenant seen as `view` has it.
fn digest_as<'a, T: Serialize>(
    state: &'a EngineState,
    domain: Domain,
    view: impl Fn(&'a TenantState) -> T,
) -> Result<Digest, canonical::CanonicalError> {
    let state = State {
        tenants: state.tenants.iter().map(|(id, t)| (id, view(t))).collect(),
    };
    canonical::digest(domain, &state)
}

pub(crate) fn digest(state: &EngineState) -> Digest {
    let tenants = || state.tenants.values();
    let encoded = if tenants().any(|t| !t.retired_keys.is_empty()) {
        digest_as(state, STATE_WITH_KEYS_DOMAIN, |t| TenantWithKeys {
            tenant: Tenant::of(t, &t.missions),
            secrets: &t.secrets,
            directory: &t.directory,
            retired_keys: &t.retired_keys,
        })
    } else if tenants().any(|t| !t.directory.is_empty()) {
        digest_as(state, STATE_WITH_DIRECTORY_DOMAIN, |t| {
            TenantWithDirectory {
                tenant: Tenant::of(t, &t.missions),
                secrets: &t.secrets,
                directory: &t.directory,
            }
        })
    } else if tenants().all(|t| t.secrets.is_empty()) {
        digest_as(state, STATE_DOMAIN, |t| Tenant::of(t, &t.missions))
    } else {
        digest_as(state, STATE_WITH_SECRETS_DOMAIN, |t| TenantWithSecrets {
            tenant: Tenant::of(t, &t.missions),
            secrets: &t.secrets,
        })
    };
    encoded.expect("engine state is always encodable")
}

#[cfg(test)]
mod tests {
    use crate::machine::Command;
    use crate::machine::command::CommandBody;
    use crate::secret::{Sealed, SecretName};
    use crate::sim;
    use crate::time::Timestamp;

    /// A state's digest covers its directory, and a state holding one
    /// restores against its digest.
    #[test]
    fn the_directory_is_in_the_digest() {
        use crate::directory::{DirectoryChange, NewUser};
        use crate::ids::UserId;
        let state = sim::state_after(4, sim::WorkloadShape::default());
        let tenant = sim::tenant_id(0);
        let create = |name: &str| Command {
            tenant: tenant.clone(),
            at: Timestamp(i64::MAX / 4),
            actor: crate::actor::Actor::Platform,
            body: CommandBody::ChangeDirectory {
                change: DirectoryChange::CreateUser {
                    user: UserId::new("ada").unwrap(),
                    details: NewUser {
                        user_name: name.to_owned(),
                        display_name: "Ada".to_owned(),
                        email: None,
                        active: true,
                    },
                },
                key: None,
            },
            precondition: None,
        };
        let mut a = state.clone();
        a.apply(&create("ada")).unwrap();
        let mut b = state.clone();
        b.apply(&create("ada.l")).unwrap();
        assert_ne!(a.digest(), state.digest());
        assert_ne!(
            a.digest(),
            b.digest(),
            "the user's fields are in the digest"
        );
        let restored = crate::machine::EngineState::restore(&a.snapshot()).unwrap();
        assert!(restored == a);
    }

    /// A state's digest covers its secrets' sealed bytes (that a state
    /// without secrets is digested as before is the format 3 fixture's
    /// test, tests/machine.rs).
    #[test]
    fn secrets_are_in_the_digest() {
        let mut state = sim::state_after(4, sim::WorkloadShape::default());
        let tenant = sim::tenant_id(0);
        let put = |sealed: &[u8]| Command {
            tenant: tenant.clone(),
            at: Timestamp(i64::MAX / 4),
            actor: crate::actor::Actor::Platform,
            body: CommandBody::PutSecret {
                name: SecretName::new("k").unwrap(),
                sealed: Sealed::new(sealed.to_vec()),
            },
            precondition: None,
        };
        let mut a = state.clone();
        a.apply(&put(b"one")).unwrap();
        let mut b = state.clone();
        b.apply(&put(b"two")).unwrap();
        assert_ne!(a.digest(), state.digest());
        assert_ne!(a.digest(), b.digest(), "the sealed bytes are in the digest");
        state.apply(&put(b"one")).unwrap();
        assert_eq!(state.digest(), a.digest());
        // A snapshot holds them, and restores against its digest.
        let restored = crate::machine::EngineState::restore(&a.snapshot()).unwrap();
        assert!(restored == a);
    }
}
