//! The Cedar entities and requests the engine builds from its own state
//! for a decision about a mission's steps.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cedar_policy::{Entities, Entity, EntityUid, RestrictedExpression};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::canonical::{self, EncodedSeq};
use crate::ids::{AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, ToolName, UserId};
use crate::mission::{AuthorityLevel, DataClassification};
use crate::policy::decision::{ENTITIES_DOMAIN, EntityRef, PolicyRequest, PreparedEntities};
use crate::policy::direct::{DirectEntities, DirectStem};
use crate::tool::ToolSpec;

pub fn classification_id(c: DataClassification) -> &'static str {
    match c {
        DataClassification::Public => "public",
        DataClassification::Internal => "internal",
        DataClassification::Confidential => "confidential",
        DataClassification::Restricted => "restricted",
    }
}

pub fn level_rank(l: AuthorityLevel) -> i64 {
    match l {
        AuthorityLevel::L1 => 1,
        AuthorityLevel::L2 => 2,
        AuthorityLevel::L3 => 3,
        AuthorityLevel::L4 => 4,
    }
}

/// An attribute value of an entity the engine builds.
enum Attr<'a> {
    Long(i64),
    Str(&'a str),
    Entity(&'static str, &'a str),
}

/// One entity the engine builds for a decision, written once and rendered
/// two ways: as Cedar's JSON entity format (what is digested, recorded and
/// replayed in release analysis) and as Cedar entities built directly
/// (what is evaluated; parsing the JSON took a quarter of the CPU of a
/// full mission run, most of it in serde errors from Cedar's attempts at
/// each value's escape forms).
struct EntitySpec<'a> {
    kind: &'static str,
    id: &'a str,
    attrs: Vec<(&'static str, Attr<'a>)>,
    parents: Vec<(&'static str, &'a str)>,
}

impl EntitySpec<'_> {
    fn to_json(&self) -> Value {
        let attrs: serde_json::Map<String, Value> = self
            .attrs
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Attr::Long(n) => json!(n),
                    Attr::Str(s) => json!(s),
                    Attr::Entity(kind, id) => entity_ref(kind, id),
                };
                ((*name).to_owned(), value)
            })
            .collect();
        let parents: Vec<Value> = self.parents.iter().map(|(k, id)| euid(k, id)).collect();
        json!({"uid": euid(self.kind, self.id), "attrs": attrs, "parents": parents})
    }

    /// The Cedar entity, and its parents for [`DirectEntities::closed`].
    fn to_cedar(&self) -> Result<(Entity, Vec<EntityUid>), String> {
        let attrs: HashMap<String, RestrictedExpression> = self
            .attrs
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Attr::Long(n) => RestrictedExpression::new_long(*n),
                    Attr::Str(s) => RestrictedExpression::new_string((*s).to_owned()),
                    Attr::Entity(kind, id) => {
                        RestrictedExpression::new_entity_uid(EntityRef::new(kind, *id).to_cedar()?)
                    }
                };
                Ok(((*name).to_owned(), value))
            })
            .collect::<Result<_, String>>()?;
        let parents: Vec<EntityUid> = self
            .parents
            .iter()
            .map(|(k, id)| EntityRef::new(k, *id).to_cedar())
            .collect::<Result<_, _>>()?;
        let entity = Entity::new(
            EntityRef::new(self.kind, self.id).to_cedar()?,
            attrs,
            parents.iter().cloned().collect::<HashSet<_>>(),
        )
        .map_err(|e| e.to_string())?;
        Ok((entity, parents))
    }
}

const CLASSIFICATIONS: [DataClassification; 4] = [
    DataClassification::Public,
    DataClassification::Internal,
    DataClassification::Confidential,
    DataClassification::Restricted,
];

/// The entities every decision carries whatever the step: the four data
/// classifications and the four approval levels, with their ranks. Built
/// once per process: rendering and building them was most of the entity
/// work of a decision.
struct Constants {
    json: Vec<Value>,
    cedar: Vec<(Entity, Vec<EntityUid>)>,
}

fn constant_specs() -> Vec<EntitySpec<'static>> {
    let classifications = CLASSIFICATIONS
        .into_iter()
        .zip(1..)
        .map(|(c, rank)| EntitySpec {
            kind: "Aura::Classification",
            id: classification_id(c),
            attrs: vec![("rank", Attr::Long(rank))],
            parents: vec![],
        });
    let levels = AuthorityLevel::ALL.into_iter().map(|l| EntitySpec {
        kind: "Aura::ApprovalLevel",
        id: l.as_str(),
        attrs: vec![("rank", Attr::Long(level_rank(l)))],
        parents: vec![],
    });
    classifications.chain(levels).collect()
}

fn constants() -> &'static Constants {
    static CONSTANTS: std::sync::OnceLock<Constants> = std::sync::OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let specs = constant_specs();
        Constants {
            json: specs.iter().map(EntitySpec::to_json).collect(),
            cedar: specs
                .iter()
                .map(|s| s.to_cedar().expect("the constant entities are well formed"))
                .collect(),
        }
    })
}

fn euid(kind: &str, id: &str) -> Value {
    json!({"type": kind, "id": id})
}

fn entity_ref(kind: &str, id: &str) -> Value {
    json!({"__entity": euid(kind, id)})
}

/// Everything a decision about a mission's tool steps looks at: one set
/// of entities serves every step of the mission, at plan time and at
/// each call, so a mission's decisions prepare its entities once.
#[derive(Clone, Copy, Debug)]
pub struct MissionSubject<'a> {
    pub tenant: &'a TenantId,
    pub namespace: &'a NamespaceId,
    pub agent: &'a AgentId,
    pub org_unit: &'a OrgUnitId,
    pub owner: Option<&'a UserId>,
    pub mission: &'a MissionId,
    pub classification: DataClassification,
    pub authority: AuthorityLevel,
    pub requester: &'a str,
    /// The tools the mission's steps call, by name, each once, with their
    /// registered specs; a step's request names one of them.
    pub tools: &'a [(&'a ToolName, &'a ToolSpec)],
}

/// A mission subject's entities: as recorded (Cedar's JSON entity format)
/// and as evaluated.
#[derive(Debug)]
pub struct PreparedSubject {
    pub json: Arc<EntitiesJson>,
    pub entities: PreparedEntities,
}

/// A subject's entities in Cedar's JSON entity format: one JSON array,
/// held as its own entities between entities shared with other subjects
/// (the [`Stem`] its mission is on), so that the recent decisions a
/// namespace keeps do not each copy the shared part. It serializes as the
/// array, in JSON and in the canonical encoding alike.
#[derive(Clone, Debug)]
pub struct EntitiesJson {
    before: Arc<[Value]>,
    own: Vec<Value>,
    after: Arc<[Value]>,
    /// The canonical encodings of the three parts, where the entities
    /// were prepared on a stem (which had them at hand for the digest).
    /// The namespace's recent decisions are in the state digest, so every
    /// snapshot encoded all their entities again.
    encoded: Option<EncodedParts>,
}

#[derive(Clone, Debug)]
struct EncodedParts {
    before: Arc<[u8]>,
    own: Box<[u8]>,
    after: Arc<[u8]>,
}

impl EntitiesJson {
    /// Entities none of which are shared.
    pub fn whole(entities: Vec<Value>) -> EntitiesJson {
        EntitiesJson {
            before: Arc::from([]),
            own: entities,
            after: Arc::from([]),
            encoded: None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.before.iter().chain(&self.own).chain(self.after.iter())
    }

    fn len(&self) -> usize {
        self.before.len() + self.own.len() + self.after.len()
    }

    /// The array as one JSON value.
    pub fn to_value(&self) -> Value {
        Value::Array(self.iter().cloned().collect())
    }
}

/// The same entities in the same order, however they are held.
impl PartialEq for EntitiesJson {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for EntitiesJson {}

impl Serialize for EntitiesJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        if let (false, Some(parts)) = (s.is_human_readable(), &self.encoded) {
            return EncodedSeq {
                count: self.len(),
                parts: &[&parts.before, &parts.own, &parts.after],
            }
            .serialize(s);
        }
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for v in self.iter() {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for EntitiesJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Value>::deserialize(d).map(EntitiesJson::whole)
    }
}

/// The prepared entities of recent mission subjects, for one engine. A
/// mission's steps are decided when the plan is submitted and again at
/// each tool call (and once more under a canary's other bundle), with the
/// same subject each time; preparing them (the JSON, its digest, the Cedar
/// entities and their transitive closure) was 15% of the CPU of a full
/// mission run. What is prepared is a function of the subject alone, so
/// a hit changes no decision and no recorded byte.
///
/// A new mission's subject differs from the last mission's of the same
/// agent and tools only in the mission's own entity. So the rest, its
/// [`Stem`], is prepared once and kept too, and a new mission adds its own
/// entity to it.
///
/// Two generations bound each: when the current one is full it becomes
/// the previous one, and a hit there moves the entry back. Derived data:
/// never replicated, snapshotted or compared.
#[derive(Default)]
pub struct SubjectCache(Mutex<Caches>);

#[derive(Default)]
struct Caches {
    subjects: Generations<PreparedSubject>,
    /// `None` for a stem that cannot stand alone (see [`Stem::build`]).
    stems: Generations<Option<Stem>>,
}

struct Generations<T> {
    current: HashMap<Vec<u8>, Arc<T>, foldhash::fast::RandomState>,
    previous: HashMap<Vec<u8>, Arc<T>, foldhash::fast::RandomState>,
}

impl<T> Default for Generations<T> {
    fn default() -> Self {
        Generations {
            current: HashMap::default(),
            previous: HashMap::default(),
        }
    }
}

/// Entries per generation: one per mission, so a node keeps the entities
/// of every mission planned in its last 1,024 to 2,048 plans until their
/// calls, at some kilobytes each.
const SUBJECTS_PER_GENERATION: usize = 1024;

/// Stems per generation: one per agent and set of tools in use.
const STEMS_PER_GENERATION: usize = 256;

impl<T> Generations<T> {
    fn get(&mut self, key: &[u8]) -> Option<Arc<T>> {
        if let Some(hit) = self.current.get(key) {
            return Some(Arc::clone(hit));
        }
        let (key, hit) = self.previous.remove_entry(key)?;
        self.current.insert(key, Arc::clone(&hit));
        Some(hit)
    }

    fn insert(&mut self, key: Vec<u8>, value: Arc<T>, per_generation: usize) {
        if self.current.len() >= per_generation {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

impl SubjectCache {
    pub fn prepared(&self, subject: &MissionSubject<'_>) -> Result<Arc<PreparedSubject>, String> {
        let specs = subject.specs();
        let key = key_of(specs.all());
        let stem_key;
        let stem = {
            let mut caches = self.lock();
            if let Some(hit) = caches.subjects.get(&key) {
                return Ok(hit);
            }
            stem_key = specs.stem_key();
            caches.stems.get(&stem_key)
        };
        let stem = match stem {
            Some(stem) => stem,
            None => {
                let built = Arc::new(Stem::build(&specs.before, &specs.after));
                self.lock()
                    .stems
                    .insert(stem_key, Arc::clone(&built), STEMS_PER_GENERATION);
                built
            }
        };
        let built = match stem.as_ref().as_ref().and_then(|s| s.with(&specs.mission)) {
            Some(prepared) => prepared,
            None => prepare(&specs)?,
        };
        let built = Arc::new(built);
        self.lock()
            .subjects
            .insert(key, Arc::clone(&built), SUBJECTS_PER_GENERATION);
        Ok(built)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Caches> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().subjects.len()
    }

    #[cfg(test)]
    fn stems(&self) -> usize {
        self.lock().stems.len()
    }
}

impl Clone for SubjectCache {
    /// A copy of the state starts with an empty cache.
    fn clone(&self) -> Self {
        SubjectCache::default()
    }
}

impl PartialEq for SubjectCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for SubjectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.lock();
        write!(
            f,
            "SubjectCache({} + {} subjects, {} + {} stems)",
            c.subjects.current.len(),
            c.subjects.previous.len(),
            c.stems.current.len(),
            c.stems.previous.len()
        )
    }
}

/// A subject's entity descriptions: the mission's own entity between
/// those every mission of the same agent and tools shares.
struct SubjectSpecs<'a> {
    /// The tenant, namespace, org unit and agent.
    before: Vec<EntitySpec<'a>>,
    mission: EntitySpec<'a>,
    /// The tools.
    after: Vec<EntitySpec<'a>>,
}

impl<'a> SubjectSpecs<'a> {
    fn all(&self) -> impl Iterator<Item = &EntitySpec<'a>> {
        self.before
            .iter()
            .chain(std::iter::once(&self.mission))
            .chain(&self.after)
    }

    /// The key of the [`Stem`]: the shared specs, and where the mission's
    /// own entity goes between them.
    fn stem_key(&self) -> Vec<u8> {
        let mut key = key_of(self.before.iter().chain(&self.after));
        key.extend_from_slice(&(self.before.len() as u64).to_le_bytes());
        key
    }
}

impl MissionSubject<'_> {
    fn specs(&self) -> SubjectSpecs<'_> {
        let (tenant, namespace) = (self.tenant.as_str(), self.namespace.as_str());
        let org_unit = self.org_unit.as_str();
        let mut agent_attrs = Vec::new();
        if let Some(owner) = self.owner {
            agent_attrs.push(("owner", Attr::Entity("Aura::User", owner.as_str())));
        }
        let tools = self.tools.iter().map(|(tool, spec)| EntitySpec {
            kind: "Aura::Tool",
            id: tool.as_str(),
            attrs: vec![
                ("risk", Attr::Long(level_rank(spec.risk))),
                (
                    "classification",
                    Attr::Entity(
                        "Aura::Classification",
                        classification_id(spec.classification),
                    ),
                ),
                ("target", Attr::Str(&spec.target)),
            ],
            parents: vec![],
        });
        let before = vec![
            EntitySpec {
                kind: "Aura::Tenant",
                id: tenant,
                attrs: vec![],
                parents: vec![],
            },
            EntitySpec {
                kind: "Aura::Namespace",
                id: namespace,
                attrs: vec![],
                parents: vec![("Aura::Tenant", tenant)],
            },
            EntitySpec {
                kind: "Aura::OrgUnit",
                id: org_unit,
                attrs: vec![],
                parents: vec![],
            },
            EntitySpec {
                kind: "Aura::Agent",
                id: self.agent.as_str(),
                attrs: agent_attrs,
                parents: vec![("Aura::OrgUnit", org_unit)],
            },
        ];
        let mission = EntitySpec {
            kind: "Aura::Mission",
            id: self.mission.as_str(),
            attrs: vec![
                (
                    "classification",
                    Attr::Entity(
                        "Aura::Classification",
                        classification_id(self.classification),
                    ),
                ),
                (
                    "authority",
                    Attr::Entity("Aura::ApprovalLevel", self.authority.as_str()),
                ),
                ("requester", Attr::Str(self.requester)),
            ],
            parents: vec![("Aura::Namespace", namespace)],
        };
        SubjectSpecs {
            before,
            mission,
            after: tools.collect(),
        }
    }

    /// The entities in Cedar's JSON entity format, and prepared for
    /// evaluation from the same description without parsing that JSON.
    /// The mission's own entities come first, then its tools, then the
    /// [`constants`].
    pub fn prepared(&self) -> Result<PreparedSubject, String> {
        prepare(&self.specs())
    }

    /// A `plan_step` or `call_tool` request for a step that calls `tool`,
    /// one of the subject's tools.
    pub fn request(
        &self,
        tool: &ToolName,
        action: &str,
        arguments: &Value,
        granted: Option<AuthorityLevel>,
    ) -> PolicyRequest {
        debug_assert!(self.tools.iter().any(|(t, _)| *t == tool));
        PolicyRequest {
            principal: EntityRef::new("Aura::Agent", self.agent.as_str()),
            action: EntityRef::new("Aura::Action", action),
            resource: EntityRef::new("Aura::Tool", tool.as_str()),
            context: json!({
                "mission": entity_ref("Aura::Mission", self.mission.as_str()),
                "arguments": arguments,
                "granted_level": granted.map_or(0, level_rank),
            }),
        }
    }
}

/// The entities of `specs` then the [`constants`], rendered and built
/// all together.
fn prepare(specs: &SubjectSpecs<'_>) -> Result<PreparedSubject, String> {
    let json = EntitiesJson::whole(json_then_constants(specs.all()));
    let (entities, parents): (Vec<Entity>, Vec<Vec<EntityUid>>) =
        cedar_then_constants(specs.all())?.into_iter().unzip();
    let closed = DirectEntities::closed(entities.iter().zip(parents.iter().map(Vec::as_slice)));
    let prepared = match closed {
        Some(direct) => PreparedEntities::deferred(&json, entities, direct)?,
        None => {
            let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
            PreparedEntities::from_parts(&json, entities)?
        }
    };
    Ok(PreparedSubject {
        json: Arc::new(json),
        entities: prepared,
    })
}

/// The Cedar JSON of `specs`, then the [`constants`]'.
fn json_then_constants<'s, 'a: 's>(specs: impl Iterator<Item = &'s EntitySpec<'a>>) -> Vec<Value> {
    specs
        .map(EntitySpec::to_json)
        .chain(constants().json.iter().cloned())
        .collect()
}

/// `specs` converted for Cedar, each with its parents, then the
/// [`constants`].
fn cedar_then_constants<'s, 'a: 's>(
    specs: impl Iterator<Item = &'s EntitySpec<'a>>,
) -> Result<Vec<(Entity, Vec<EntityUid>)>, String> {
    specs
        .map(EntitySpec::to_cedar)
        .chain(constants().cedar.iter().cloned().map(Ok))
        .collect()
}

/// Everything a mission's entities share with the other missions of the
/// same agent and tools, all but the mission's own entity: rendered,
/// encoded for the digest, converted for Cedar and closed, once.
struct Stem {
    /// Cedar JSON of the entities before the mission's, and after it
    /// (the tools, then the [`constants`]).
    before: Arc<[Value]>,
    after: Arc<[Value]>,
    /// The canonical encodings of `before` and of `after`, back to back.
    before_encoded: Arc<[u8]>,
    after_encoded: Arc<[u8]>,
    entities: Arc<[Entity]>,
    direct: DirectStem,
}

impl Stem {
    /// `None` where the shared entities cannot be prepared on their own:
    /// one does not convert, or they do not close as they are (a uid
    /// given twice, a cycle). Subjects on such a stem are prepared all
    /// together, which decides them, or reports the error, as ever.
    fn build(before: &[EntitySpec<'_>], after: &[EntitySpec<'_>]) -> Option<Stem> {
        let before_json: Vec<Value> = before.iter().map(EntitySpec::to_json).collect();
        let after_json = json_then_constants(after.iter());
        let converted = cedar_then_constants(before.iter().chain(after)).ok()?;
        let direct = DirectEntities::stem(converted.iter().map(|(e, p)| (e, p.as_slice())))?;
        Some(Stem {
            before_encoded: encoded(&before_json)?.into(),
            after_encoded: encoded(&after_json)?.into(),
            before: before_json.into(),
            after: after_json.into(),
            entities: converted.into_iter().map(|(e, _)| e).collect(),
            direct,
        })
    }

    /// The subject with `mission` as its own entity: exactly what
    /// [`prepare`] makes of the whole, or `None` where the mission's
    /// entity does not simply add to the stem.
    fn with(&self, mission: &EntitySpec<'_>) -> Option<PreparedSubject> {
        let (entity, parents) = mission.to_cedar().ok()?;
        let direct = DirectEntities::on_stem(&self.direct, &entity, &parents)?;
        let own = mission.to_json();
        let own_encoded = canonical::to_bytes(&own).ok()?;
        let count = self.before.len() + 1 + self.after.len();
        let digest = canonical::digest_encoded_seq(
            ENTITIES_DOMAIN,
            count,
            &[&self.before_encoded, &own_encoded, &self.after_encoded],
        )
        .ok()?;
        Some(PreparedSubject {
            json: Arc::new(EntitiesJson {
                before: Arc::clone(&self.before),
                own: vec![own],
                after: Arc::clone(&self.after),
                encoded: Some(EncodedParts {
                    before: Arc::clone(&self.before_encoded),
                    own: own_encoded.into_boxed_slice(),
                    after: Arc::clone(&self.after_encoded),
                }),
            }),
            entities: PreparedEntities::layered(
                digest,
                (Arc::clone(&self.entities), vec![entity]),
                direct,
            ),
        })
    }
}

/// The canonical encodings of `values`, back to back.
fn encoded(values: &[Value]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(canonical::to_bytes(v).ok()?);
    }
    Some(out)
}

/// The cache key: the step's entity descriptions themselves, each
/// string length-prefixed so that no two subjects share a key. Derived
/// from [`MissionSubject::specs`], so a field the entities come to show is
/// in the key without anyone having to remember it.
fn key_of<'s, 'a: 's>(specs: impl Iterator<Item = &'s EntitySpec<'a>>) -> Vec<u8> {
    fn put(key: &mut Vec<u8>, s: &str) {
        key.extend_from_slice(&(s.len() as u64).to_le_bytes());
        key.extend_from_slice(s.as_bytes());
    }
    let mut key = Vec::with_capacity(512);
    for spec in specs {
        put(&mut key, spec.kind);
        put(&mut key, spec.id);
        key.extend_from_slice(&(spec.attrs.len() as u64).to_le_bytes());
        for (name, value) in &spec.attrs {
            put(&mut key, name);
            match value {
                Attr::Long(n) => {
                    key.push(0);
                    key.extend_from_slice(&n.to_le_bytes());
                }
                Attr::Str(s) => {
                    key.push(1);
                    put(&mut key, s);
                }
                Attr::Entity(kind, id) => {
                    key.push(2);
                    put(&mut key, kind);
                    put(&mut key, id);
                }
            }
        }
        key.extend_from_slice(&(spec.parents.len() as u64).to_le_bytes());
        for (kind, id) in &spec.parents {
            put(&mut key, kind);
            put(&mut key, id);
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        tenant: TenantId,
        namespace: NamespaceId,
        agent: AgentId,
        org_unit: OrgUnitId,
        mission: MissionId,
        tool: ToolName,
        spec: ToolSpec,
        read: ToolName,
        read_spec: ToolSpec,
    }

    fn fixture() -> Fixture {
        Fixture {
            tenant: "acme".parse().unwrap(),
            namespace: "prod".parse().unwrap(),
            agent: "bot".parse().unwrap(),
            org_unit: "finance".parse().unwrap(),
            mission: "m-1".parse().unwrap(),
            tool: "erp.post".parse().unwrap(),
            spec: ToolSpec {
                risk: AuthorityLevel::L3,
                classification: DataClassification::Confidential,
                target: "eu-west-1".into(),
                invocation: None,
                timeouts: None,
            },
            read: "erp.read".parse().unwrap(),
            read_spec: ToolSpec {
                risk: AuthorityLevel::L1,
                classification: DataClassification::Internal,
                target: "eu-west-1".into(),
                invocation: None,
                timeouts: None,
            },
        }
    }

    impl Fixture {
        fn tools(&self) -> [(&ToolName, &ToolSpec); 2] {
            [(&self.tool, &self.spec), (&self.read, &self.read_spec)]
        }

        fn subject<'a>(
            &'a self,
            owner: Option<&'a UserId>,
            tools: &'a [(&'a ToolName, &'a ToolSpec)],
        ) -> MissionSubject<'a> {
            MissionSubject {
                tenant: &self.tenant,
                namespace: &self.namespace,
                agent: &self.agent,
                org_unit: &self.org_unit,
                owner,
                mission: &self.mission,
                classification: DataClassification::Internal,
                authority: AuthorityLevel::L2,
                requester: "user:alice",
                tools,
            }
        }
    }

    fn check(owner: Option<&UserId>) {
        let f = fixture();
        let tools = f.tools();
        let PreparedSubject {
            json,
            entities: built,
        } = f.subject(owner, &tools).prepared().unwrap();
        let parsed = PreparedEntities::from_json(&json.to_value(), None).unwrap();
        // The direct copy is closed without Cedar and Cedar's set is built
        // only on demand; both must be what parsing the record gives.
        assert_eq!(built.direct(), parsed.direct());
        assert_eq!(built.cedar(), parsed.cedar());
        assert_eq!(built.digest(), parsed.digest());
        assert_eq!(json.len(), 15);
    }

    /// The entities evaluated are exactly the ones recorded: building them
    /// directly must give what parsing the recorded JSON gives.
    #[test]
    fn built_entities_equal_their_parsed_json() {
        check(None);
        check(Some(&"alice".parse().unwrap()));
    }

    /// A subject is prepared once; a subject that differs in any field the
    /// entities show gets its own, and each equals a fresh preparation.
    #[test]
    fn the_cache_prepares_a_subject_once_and_tells_every_field_apart() {
        let cache = SubjectCache::default();
        let f = fixture();
        let owner: UserId = "alice".parse().unwrap();
        let tools = f.tools();
        let base = f.subject(None, &tools);
        let first = cache.prepared(&base).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.prepared(&base).unwrap()));

        let other_target = ToolSpec {
            target: "us-east-1".into(),
            ..f.spec.clone()
        };
        let other_tool: ToolName = "erp.mail".parse().unwrap();
        let retargeted = [(&f.tool, &other_target), (&f.read, &f.read_spec)];
        let one_more = [
            (&f.tool, &f.spec),
            (&f.read, &f.read_spec),
            (&other_tool, &f.read_spec),
        ];
        let fewer = [(&f.tool, &f.spec)];
        let variants = [
            MissionSubject {
                owner: Some(&owner),
                ..base
            },
            MissionSubject {
                requester: "user:bob",
                ..base
            },
            MissionSubject {
                authority: AuthorityLevel::L3,
                ..base
            },
            MissionSubject {
                classification: DataClassification::Restricted,
                ..base
            },
            MissionSubject {
                tools: &retargeted,
                ..base
            },
            MissionSubject {
                tools: &one_more,
                ..base
            },
            MissionSubject {
                tools: &fewer,
                ..base
            },
        ];
        let mut digests = vec![first.entities.digest()];
        for v in &variants {
            let cached = cache.prepared(v).unwrap();
            let fresh = v.prepared().unwrap();
            assert_eq!(cached.json, fresh.json);
            assert_eq!(cached.entities.digest(), fresh.entities.digest());
            digests.push(cached.entities.digest());
        }
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), variants.len() + 1);
        assert_eq!(cache.len(), variants.len() + 1);
    }

    /// A mission's entity added to the stem its agent and tools share is
    /// exactly the set prepared all together: the same JSON, digest,
    /// direct entities and Cedar set. Missions of the same agent and
    /// tools share one stem; another owner or tool set has its own.
    #[test]
    fn a_mission_on_a_shared_stem_is_prepared_as_if_whole() {
        let cache = SubjectCache::default();
        let f = fixture();
        let owner: UserId = "alice".parse().unwrap();
        let tools = f.tools();
        let fewer = [(&f.read, &f.read_spec)];
        let missions: Vec<MissionId> = (0..4).map(|i| format!("m-{i}").parse().unwrap()).collect();
        for (owner, tools) in [(None, &tools[..]), (Some(&owner), &tools), (None, &fewer)] {
            for (i, mission) in missions.iter().enumerate() {
                let subject = MissionSubject {
                    mission,
                    requester: ["user:alice", "user:bob"][i % 2],
                    authority: AuthorityLevel::ALL[i],
                    classification: CLASSIFICATIONS[3 - i],
                    ..f.subject(owner, tools)
                };
                let layered = cache.prepared(&subject).unwrap();
                let whole = subject.prepared().unwrap();
                assert_eq!(layered.json, whole.json);
                assert_eq!(layered.entities.digest(), whole.entities.digest());
                assert_eq!(layered.entities.direct(), whole.entities.direct());
                assert_eq!(layered.entities.cedar(), whole.entities.cedar());
            }
        }
        assert_eq!(cache.len(), 3 * missions.len());
        assert_eq!(cache.stems(), 3);
    }

    /// The recorded entities serialize as the one JSON array they stand
    /// for, in JSON and in the canonical encoding, shared part or not, and
    /// read back equal.
    #[test]
    fn recorded_entities_are_one_array_however_they_are_held() {
        let cache = SubjectCache::default();
        let f = fixture();
        let tools = f.tools();
        let subject = f.subject(None, &tools);
        cache.prepared(&subject).unwrap();
        let other: MissionId = "m-2".parse().unwrap();
        let on_stem = cache
            .prepared(&MissionSubject {
                mission: &other,
                ..subject
            })
            .unwrap();
        let json = &on_stem.json;
        assert!(json.own.len() == 1 && !json.before.is_empty() && !json.after.is_empty());
        assert!(json.encoded.is_some(), "the canonical bytes are the stem's");
        let array = json.to_value();
        assert_eq!(
            serde_json::to_string(json).unwrap(),
            serde_json::to_string(&array).unwrap()
        );
        assert_eq!(
            canonical::to_bytes(json).unwrap(),
            canonical::to_bytes(&array).unwrap()
        );
        let read: EntitiesJson = serde_json::from_value(array).unwrap();
        assert_eq!(&read, json.as_ref());
        assert_eq!(read.own.len(), 15);
    }

    /// The cache holds at most two generations, and what is used stays.
    #[test]
    fn the_cache_is_bounded_and_keeps_what_is_in_use() {
        let cache = SubjectCache::default();
        let f = fixture();
        let tools = f.tools();
        let keep = cache.prepared(&f.subject(None, &tools)).unwrap();
        let missions: Vec<MissionId> = (0..3 * SUBJECTS_PER_GENERATION)
            .map(|i| format!("m-{i}").parse().unwrap())
            .collect();
        for (i, mission) in missions.iter().enumerate() {
            cache
                .prepared(&MissionSubject {
                    mission,
                    ..f.subject(None, &tools)
                })
                .unwrap();
            if i % 512 == 0 {
                assert!(Arc::ptr_eq(
                    &keep,
                    &cache.prepared(&f.subject(None, &tools)).unwrap()
                ));
            }
            assert!(cache.len() <= 2 * SUBJECTS_PER_GENERATION);
        }
    }
}
