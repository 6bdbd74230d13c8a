//! The state digest as version 2 defined it, which snapshots of format
//! `aura.engine-snapshot/2` carry: the canonical encoding of the whole
//! state with every mission encoded whole. A node upgraded past it still
//! restores the snapshot an older version left on disk, or a member
//! still on that version sends it, and checks it against the digest it
//! carries.
//!
//! The canonical encoding writes struct fields in declaration order
//! without names, so these views, field for field in
//! [`TenantState`]'s order, encode to the bytes version 2 hashed.
//! `restores_a_format_2_snapshot` holds them to a snapshot that version
//! wrote.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::AuditLog;
use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::identity::keys::KeyPair;
use crate::ids::{AgentId, MissionId, NamespaceId, TenantId, ToolName};
use crate::machine::state::{AgentRecord, CredentialRecord, EngineState, Namespace, TenantState};
use crate::machine::tokens::Tokens;
use crate::mission::Mission;
use crate::policy::bundle::BundleSource;
use crate::time::Timestamp;
use crate::tool::ToolSpec;

const STATE_DOMAIN_V2: Domain = Domain::new("aura.engine-state/2");

#[derive(Serialize)]
struct StateV2<'a> {
    tenants: BTreeMap<&'a TenantId, TenantV2<'a>>,
}

#[derive(Serialize)]
struct TenantV2<'a> {
    id: &'a TenantId,
    display_name: &'a str,
    created_at: Timestamp,
    clock: Timestamp,
    key: &'a KeyPair,
    namespaces: &'a BTreeMap<NamespaceId, Namespace>,
    agents: &'a BTreeMap<AgentId, AgentRecord>,
    credentials: &'a BTreeMap<u64, CredentialRecord>,
    missions: &'a BTreeMap<MissionId, Mission>,
    tokens: &'a Tokens,
    bundles: &'a BTreeMap<Digest, BundleSource>,
    tools: &'a BTreeMap<ToolName, ToolSpec>,
    audit: &'a AuditLog,
}

impl<'a> From<&'a TenantState> for TenantV2<'a> {
    fn from(t: &'a TenantState) -> Self {
        TenantV2 {
            id: &t.id,
            display_name: &t.display_name,
            created_at: t.created_at,
            clock: t.clock,
            key: &t.key,
            namespaces: &t.namespaces,
            agents: &t.agents,
            credentials: &t.credentials,
            missions: &t.missions,
            tokens: &t.tokens,
            bundles: &t.bundles,
            tools: &t.tools,
            audit: &t.audit,
        }
    }
}

/// The version 2 digest of `state`.
pub(crate) fn digest(state: &EngineState) -> Digest {
    let view = StateV2 {
        tenants: state.tenants.iter().map(|(id, t)| (id, t.into())).collect(),
    };
    canonical::digest(STATE_DOMAIN_V2, &view).expect("engine state is always encodable")
}
