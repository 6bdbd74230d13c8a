//! Engine state: every tenant's directory of agents, credentials, missions,
//! tokens and audit chain. Only [`EngineState::apply`] changes it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::audit::AuditLog;
use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::directory::{Directory, KeyId};
use crate::identity::credential::AgentCredential;
use crate::identity::{Kek, Keyring, PublicKey, RetiredKey, SealError, SigningKeyId, TenantKey};
use crate::ids::{AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, ToolName, UserId};
use crate::machine::missions::Missions;
use crate::machine::tokens::Tokens;
use crate::mission::{Mission, MissionState, StepTimeout, StepTimeouts};
use crate::policy::authority::AuthorityConfig;
use crate::policy::bundle::{BundleSource, CompiledBundle};
use crate::policy::canary::Canary;
use crate::policy::decision::{Decision, PolicyRequest};
use crate::policy::entities::{EntitiesJson, SubjectCache};
use crate::policy::reasoner::ReasonerConfig;
use crate::policy::routing::RoutingTable;
use crate::secret::{SecretName, SecretRecord};
use crate::time::Timestamp;
use crate::tool::ToolSpec;

/// Version 3 commits to each mission through its digest
/// ([`crate::machine::missions::Missions`]); version 2, which format 2
/// snapshots carry, encoded every mission whole
/// ([`crate::machine::state_digest_v2`]).
pub const STATE_DOMAIN: Domain = Domain::new("aura.engine-state/3");

/// Which bundles a namespace's decisions use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacePolicy {
    pub stable: Option<Digest>,
    pub canary: Option<Canary>,
}

/// A decision taken under the stable bundle, kept so that a candidate
/// bundle can be replayed against recent traffic before it is released.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecentDecision {
    pub request: PolicyRequest,
    /// Shared with the step's cached entities, not a copy of them.
    pub entities: Arc<EntitiesJson>,
    pub decision: Decision,
    pub input_digest: Digest,
}

/// How many recent decisions a namespace keeps for release analysis.
pub const RECENT_DECISIONS: usize = 256;

pub const CONFIG_DOMAIN: Domain = Domain::new("aura.namespace-config/1");

/// The editable parts of a namespace's configuration, each versioned so
/// that a change can require the version its author read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigPart {
    /// The stable bundle and the canary release (its bundle, share and
    /// start), not the canary's running statistics.
    Releases,
    Authority,
    Routing,
    Reasoner,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    pub display_name: String,
    pub created_at: Timestamp,
    pub policy: NamespacePolicy,
    pub authority: AuthorityConfig,
    pub routing: RoutingTable,
    /// Absent in snapshots taken before reasoners were configurable.
    #[serde(default)]
    pub reasoner: ReasonerConfig,
    pub recent: VecDeque<RecentDecision>,
}

impl Namespace {
    /// The version of one part of the configuration: a digest of exactly
    /// what an author edits.
    pub fn config_version(&self, part: ConfigPart) -> Digest {
        let d = match part {
            ConfigPart::Releases => canonical::digest(
                CONFIG_DOMAIN,
                &(
                    "releases",
                    &self.policy.stable,
                    self.policy
                        .canary
                        .as_ref()
                        .map(|c| (c.bundle, c.basis_points, c.started_at)),
                ),
            ),
            ConfigPart::Authority => {
                canonical::digest(CONFIG_DOMAIN, &("authority", &self.authority))
            }
            ConfigPart::Routing => canonical::digest(CONFIG_DOMAIN, &("routing", &self.routing)),
            ConfigPart::Reasoner => canonical::digest(CONFIG_DOMAIN, &("reasoner", &self.reasoner)),
        };
        d.expect("configuration encodes canonically")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub org_unit: OrgUnitId,
    /// The human accountable for the agent; never its approver.
    pub owner: Option<UserId>,
    pub credentials: Vec<u64>,
}

/// Compiled bundles, derived from their sources: rebuilt on restore, never
/// part of the digest.
#[derive(Clone, Default)]
pub struct BundleCache(pub(crate) BTreeMap<Digest, Arc<CompiledBundle>>);

impl PartialEq for BundleCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for BundleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BundleCache({} bundles)", self.0.len())
    }
}

/// The missions that are not closed yet, derived from the missions map:
/// maintained as commands change missions and rebuilt on restore, never
/// part of the digest.
///
/// Closed missions stay in the state for their record, so over a
/// deployment's life they are nearly all of it; the runtime's loops
/// (queue, timers, compensations, the executor) and the approvers' inbox
/// look only at open ones, and would otherwise scan every mission ever
/// run after every batch of commands.
///
/// It also keeps the missions a worker's claim could take, in the order
/// claims take them ([`QueuePlace`]). Executors look for work after every
/// batch of commits, on every node; walking every open mission for it
/// (most of them running under a live lease) was 7% of the CPU of a busy
/// cluster.
///
/// And it keeps the missions that still wait for a plan, and those whose
/// compensations are under way, which the leader's executor and
/// compensator look for after every batch of commits: walking every open
/// mission for them was 3% and 1.5% of the CPU of the missions benchmark,
/// under the state's read lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenMissions {
    ids: BTreeSet<MissionId>,
    unplanned: BTreeSet<MissionId>,
    compensating: BTreeSet<MissionId>,
    places: BTreeMap<MissionId, QueuePlace>,
    queue: BTreeSet<(QueuePlace, MissionId)>,
}

/// Where an open mission stands for a worker's claim. Missions whose
/// lease ended (or never began: a lost lease leaves none) come first, by
/// when it ended, for they have waited longest; then the missions queued
/// for their first claim, in the order they entered the queue (the audit
/// sequence number of that move).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum QueuePlace {
    LeaseEnds(Timestamp),
    Entered(u64),
}

impl QueuePlace {
    /// The mission's place, if a claim could take it at some time: queued,
    /// or executing and not compensating (it is free once its lease ends).
    fn of(m: &Mission) -> Option<QueuePlace> {
        match m.state() {
            MissionState::PendingExecution => Some(QueuePlace::Entered(
                m.timeline().last().map_or(0, |c| c.audit_seq),
            )),
            MissionState::InProgress | MissionState::Executed
                if !m.execution().is_compensating() =>
            {
                Some(QueuePlace::LeaseEnds(
                    m.execution().lease().map_or(Timestamp(0), |l| l.expires_at),
                ))
            }
            _ => None,
        }
    }

    /// Whether a claim at `now` may take a mission at this place.
    fn is_free_at(self, now: Timestamp) -> bool {
        match self {
            QueuePlace::LeaseEnds(end) => end <= now,
            QueuePlace::Entered(_) => true,
        }
    }
}

/// Puts `id` in `set` or takes it out. Looked up first: nearly every
/// command refreshes a mission whose memberships do not change, and need
/// not clone its id.
fn keep_if(set: &mut BTreeSet<MissionId>, id: &MissionId, wanted: bool) {
    if wanted != set.contains(id) {
        if wanted {
            set.insert(id.clone());
        } else {
            set.remove(id);
        }
    }
}

impl OpenMissions {
    pub(crate) fn of(missions: &BTreeMap<MissionId, Mission>) -> OpenMissions {
        let mut open = OpenMissions::default();
        for id in missions.keys() {
            open.refresh(missions, id);
        }
        open
    }

    /// Brings the index up to date with the mission's current state.
    pub(crate) fn refresh(&mut self, missions: &BTreeMap<MissionId, Mission>, id: &MissionId) {
        let m = missions.get(id).filter(|m| !m.state().is_closed());
        keep_if(&mut self.ids, id, m.is_some());
        // A submitted plan always moves the mission out of PLANNING.
        let awaits_plan =
            m.is_some_and(|m| matches!(m.state(), MissionState::Created | MissionState::Planning));
        keep_if(&mut self.unplanned, id, awaits_plan);
        let compensating = m.is_some_and(|m| m.execution().is_compensating());
        keep_if(&mut self.compensating, id, compensating);
        let place = m.and_then(QueuePlace::of);
        if self.places.get(id) == place.as_ref() {
            return;
        }
        if let Some(old) = self.places.remove(id) {
            self.queue.remove(&(old, id.clone()));
        }
        if let Some(new) = place {
            self.places.insert(id.clone(), new);
            self.queue.insert((new, id.clone()));
        }
    }

    /// The ids of the missions a claim at `now` may take, in claim order.
    /// Leases that have not ended are passed over by comparing places
    /// only; no mission is looked up for them.
    pub(crate) fn claimable_at(&self, now: Timestamp) -> impl Iterator<Item = &MissionId> {
        self.queue
            .iter()
            .filter(move |(place, _)| place.is_free_at(now))
            .map(|(_, id)| id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: Timestamp,
    pub by: Actor,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub credential: AgentCredential,
    pub revoked: Option<Revocation>,
}

impl CredentialRecord {
    pub fn is_active_at(&self, t: Timestamp) -> bool {
        let c = &self.credential.claims;
        self.revoked.is_none() && c.not_before <= t && t < c.not_after
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantState {
    pub(crate) id: TenantId,
    pub(crate) display_name: String,
    pub(crate) created_at: Timestamp,
    /// The newest time stamped on this tenant's audit chain. Command times
    /// come from whichever node proposed them; the engine never lets the
    /// chain's time go backwards.
    pub(crate) clock: Timestamp,
    pub(crate) key: TenantKey,
    /// The keys that signed before `key`, oldest first; absent from the
    /// encoding while empty, so tenants that never rotated are written
    /// (and digested) as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) retired_keys: Vec<RetiredKey>,
    pub(crate) namespaces: BTreeMap<NamespaceId, Namespace>,
    pub(crate) agents: BTreeMap<AgentId, AgentRecord>,
    pub(crate) credentials: BTreeMap<u64, CredentialRecord>,
    pub(crate) missions: Missions,
    pub(crate) tokens: Tokens,
    pub(crate) bundles: BTreeMap<Digest, BundleSource>,
    pub(crate) tools: BTreeMap<ToolName, ToolSpec>,
    /// Sealed; absent from the encoding while empty, so the states (and
    /// digests) of tenants without secrets are what they were before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) secrets: BTreeMap<SecretName, SecretRecord>,
    /// Absent from the encoding while empty, as secrets are.
    #[serde(default, skip_serializing_if = "Directory::is_empty")]
    pub(crate) directory: Directory,
    pub(crate) audit: AuditLog,
    #[serde(skip)]
    pub(crate) compiled: BundleCache,
    #[serde(skip)]
    pub(crate) open: OpenMissions,
}

impl TenantState {
    pub fn id(&self) -> &TenantId {
        &self.id
    }
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    /// The key that signs from now on.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }
    pub fn signing_key_id(&self) -> SigningKeyId {
        SigningKeyId::of(&self.id, &self.key.public())
    }
    /// The keys that signed before the current one, oldest first.
    pub fn retired_keys(&self) -> &[RetiredKey] {
        &self.retired_keys
    }
    /// Every key the tenant has signed with, oldest first: what an audit
    /// export lists, and what a verifier follows through the chain.
    pub fn key_history(&self) -> Vec<PublicKey> {
        let retired = self.retired_keys.iter().map(|r| r.public_key);
        retired.chain([self.key.public()]).collect()
    }
    /// The keys whose credentials and tokens the tenant honours.
    pub fn keyring(&self) -> Keyring {
        Keyring::of(
            (self.signing_key_id(), self.key.public()),
            &self.retired_keys,
        )
    }
    /// The key that signed (or signs) the checkpoint of a tree of `size`
    /// entries: a retired key signed up to its handover checkpoint.
    pub fn checkpoint_key(&self, size: u64) -> PublicKey {
        self.retired_keys
            .iter()
            .find(|r| size <= r.last_checkpoint)
            .map_or_else(|| self.key.public(), |r| r.public_key)
    }
    /// Any key the tenant ever signed with, honoured or not, by id (no
    /// id: the first key): what its own records were signed by.
    pub fn key_named(&self, id: Option<&SigningKeyId>) -> Option<PublicKey> {
        let current = (self.signing_key_id(), self.key.public());
        let retired = self.retired_keys.iter().map(|r| (r.key_id, r.public_key));
        let mut oldest_first = retired.chain([current]);
        match id {
            None => oldest_first.next(),
            Some(id) => oldest_first.find(|(k, _)| k == id),
        }
        .map(|(_, key)| key)
    }
    /// The signing key as the state holds it, sealed under the cluster's
    /// KEK; none for a tenant created before keys were sealed.
    pub fn sealed_key(&self) -> Option<&crate::identity::SealedSeed> {
        self.key.sealed()
    }
    pub fn namespaces(&self) -> &BTreeMap<NamespaceId, Namespace> {
        &self.namespaces
    }
    pub fn agents(&self) -> &BTreeMap<AgentId, AgentRecord> {
        &self.agents
    }
    pub fn credentials(&self) -> &BTreeMap<u64, CredentialRecord> {
        &self.credentials
    }
    pub fn secrets(&self) -> &BTreeMap<SecretName, SecretRecord> {
        &self.secrets
    }
    pub fn directory(&self) -> &Directory {
        &self.directory
    }
    pub fn missions(&self) -> &BTreeMap<MissionId, Mission> {
        &self.missions
    }
    /// The missions that are not closed, in id order.
    pub fn open_missions(&self) -> impl Iterator<Item = &Mission> {
        self.open.ids.iter().filter_map(|id| self.missions.get(id))
    }
    pub fn open_mission_count(&self) -> usize {
        self.open.ids.len()
    }
    /// The missions that have no plan yet, CREATED or PLANNING, in id
    /// order.
    pub fn unplanned_missions(&self) -> impl Iterator<Item = &Mission> {
        self.missions_in(&self.open.unplanned)
    }
    /// The missions whose compensations are under way, in id order.
    pub fn compensating_missions(&self) -> impl Iterator<Item = &Mission> {
        self.missions_in(&self.open.compensating)
    }
    fn missions_in<'a>(
        &'a self,
        ids: &'a BTreeSet<MissionId>,
    ) -> impl Iterator<Item = &'a Mission> {
        ids.iter().filter_map(|id| self.missions.get(id))
    }
    /// The missions a worker's claim at `now` may take, in the order
    /// claims take them: those whose lease ended first (by when it ended),
    /// then the queue in the order missions entered it. The engine may
    /// still refuse a claim for reasons of its own (a deadline, the
    /// agent's credential, a stalled step).
    pub fn claimable_missions(&self, now: Timestamp) -> impl Iterator<Item = &Mission> {
        self.open
            .claimable_at(now)
            .filter_map(|id| self.missions.get(id))
    }
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }
    pub fn bundles(&self) -> &BTreeMap<Digest, BundleSource> {
        &self.bundles
    }
    pub fn tools(&self) -> &BTreeMap<ToolName, ToolSpec> {
        &self.tools
    }
    pub fn compiled_bundle(&self, version: &Digest) -> Option<&Arc<CompiledBundle>> {
        self.compiled.0.get(version)
    }

    /// Rebuilds derived indexes (Merkle tree, compiled bundles, open
    /// missions) after a restore.
    pub(crate) fn rebuild_derived(&mut self) -> Result<(), String> {
        self.open = OpenMissions::of(&self.missions);
        self.audit
            .check_and_rebuild(&self.id)
            .map_err(|e| format!("audit chain: {e}"))?;
        let mut compiled = BTreeMap::new();
        for (version, source) in &self.bundles {
            let bundle = CompiledBundle::compile(source)
                .map_err(|e| format!("stored bundle {version} no longer compiles: {e}"))?;
            compiled.insert(*version, Arc::new(bundle));
        }
        self.compiled = BundleCache(compiled);
        Ok(())
    }

    /// Whether the agent holds a credential that is valid and unrevoked at `t`.
    /// The timeouts of a mission's step: the plan step's own, else its
    /// tool's; none when neither declares any.
    pub fn step_timeouts<'a>(&'a self, m: &'a Mission, step: u32) -> Option<&'a StepTimeouts> {
        let planned = m.plan()?.steps.get(step as usize)?;
        planned
            .timeouts
            .as_ref()
            .or_else(|| self.tools.get(&planned.tool)?.timeouts.as_ref())
    }

    /// When the mission's next step overruns `timeout`: start-to-close
    /// while a worker holds the step, counted from the claim, the previous
    /// step's report or the step's last approval vote, whichever is
    /// latest (waiting for an approver is not the worker's time);
    /// schedule-to-start while nobody holds it. None when the timeout is
    /// off or does not apply now.
    pub fn step_timeout_due(&self, m: &Mission, timeout: StepTimeout) -> Option<Timestamp> {
        let step = m.execution().next_step();
        let timeouts = self.step_timeouts(m, step)?;
        let since = match timeout {
            StepTimeout::StartToClose => {
                let started = m.execution().step_started_at()?;
                m.holds()
                    .get(&step)
                    .and_then(|h| h.approval.votes.last())
                    .map_or(started, |v| v.at.max(started))
            }
            StepTimeout::ScheduleToStart => m.free_since()?,
        };
        timeouts.due(timeout, since)
    }

    pub fn agent_is_active(&self, agent: &AgentId, t: Timestamp) -> bool {
        self.active_credential(agent, t).is_some()
    }

    /// The serial of the agent's newest credential that is valid and
    /// unrevoked at `t`.
    pub fn active_credential(&self, agent: &AgentId, t: Timestamp) -> Option<u64> {
        self.agents.get(agent).and_then(|a| {
            a.credentials
                .iter()
                .rev()
                .find(|s| self.credentials.get(s).is_some_and(|c| c.is_active_at(t)))
                .copied()
        })
    }

    pub fn is_revoked(&self, serial: u64) -> bool {
        self.credentials
            .get(&serial)
            .is_none_or(|c| c.revoked.is_some())
    }
}

/// The whole replicated state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub(crate) tenants: BTreeMap<TenantId, TenantState>,
    #[serde(skip)]
    pub(crate) subjects: SubjectCache,
    #[serde(skip)]
    pub(crate) keys: KeyIndex,
    /// What opens the tenants' sealed signing keys; given to each node
    /// from outside the log ([`EngineState::unlock`]).
    #[serde(skip)]
    pub(crate) kek: KekSlot,
}

/// The KEK, outside the state's equality and encoding: two replicas with
/// the same tenants are the same state whichever node holds them.
#[derive(Clone, Debug, Default)]
pub(crate) struct KekSlot(pub(crate) Option<Kek>);

impl PartialEq for KekSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A tenant whose signing key this node cannot open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant {tenant}: {reason}")]
pub struct LockedKey {
    pub tenant: TenantId,
    pub reason: SealError,
}

/// Which tenant holds each API key, so that a presented key is found
/// without knowing its tenant. Derived from the directories: kept up to
/// date by `apply`, rebuilt on restore, never part of the digest.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyIndex(pub(crate) std::collections::HashMap<KeyId, TenantId>);

impl PartialEq for KeyIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl KeyIndex {
    pub(crate) fn of<'a>(tenants: impl Iterator<Item = &'a TenantState>) -> KeyIndex {
        KeyIndex(
            tenants
                .flat_map(|t| t.directory.keys.keys().map(|k| (k.clone(), t.id.clone())))
                .collect(),
        )
    }
}

impl EngineState {
    pub fn new() -> Self {
        EngineState::default()
    }

    /// Keeps `kek` for the tenants created from now on and opens every
    /// sealed signing key already in the state: a node given the wrong
    /// KEK finds out here, before it applies or signs anything.
    pub fn unlock(&mut self, kek: Kek) -> Result<(), LockedKey> {
        for t in self.tenants.values_mut() {
            t.key
                .unlock(Some(&kek), &t.id)
                .map_err(|reason| LockedKey {
                    tenant: t.id.clone(),
                    reason,
                })?;
        }
        self.kek = KekSlot(Some(kek));
        Ok(())
    }

    pub fn tenant(&self, id: &TenantId) -> Option<&TenantState> {
        self.tenants.get(id)
    }

    pub fn tenants(&self) -> impl Iterator<Item = &TenantState> {
        self.tenants.values()
    }

    /// The tenant that holds API key `id`, if any does.
    pub fn key_tenant(&self, id: &KeyId) -> Option<&TenantState> {
        self.tenants.get(self.keys.0.get(id)?)
    }

    /// SHA-256 over the canonical encoding of the whole state (derived
    /// indexes such as Merkle trees excluded). Replicas that applied the same
    /// commands have the same digest.
    pub fn digest(&self) -> Digest {
        super::state_digest::digest(self)
    }
}
