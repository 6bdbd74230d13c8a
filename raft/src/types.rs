//! The openraft type configuration: what a log entry carries, what applying
//! it returns, and how nodes are named.

use std::fmt;
use std::sync::Arc;

use aura_engine::machine::{Command, Event, Rejection};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node's id: a small positive integer, unique in its cluster.
pub type NodeId = u64;

/// What the cluster knows about a member: where its cluster listener is and
/// which region it runs in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `host:port` of the node's cluster listener.
    pub addr: String,
    /// A free-form region label such as `eu-west-1`.
    pub region: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.addr, self.region)
    }
}

/// What one log entry carries: one engine command, or a sequence of them
/// that one proposer wants applied back to back.
///
/// Shared, not copied: the log keeps every entry in memory and hands out
/// copies to apply and to replicate, and copying whole commands there was
/// over 1% of a busy cluster's CPU.
///
/// A sequence is how a worker that has several commands ready at once (a
/// tool call's result and the step report it ends, a reasoner's exchange
/// and the plan it gave) pays for one entry, one replication round and one
/// fdatasync instead of one each. It changes nothing about what they do:
/// each command is applied as it would be alone, with its own audit entry,
/// and nothing else is applied between them. The first refused command
/// ends the sequence; those after it are not applied ([`SequenceApplied`]).
///
/// Serialized as the command itself, as entries always were, or as
/// `{"sequence": [command, ...]}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Proposal {
    One(Arc<Command>),
    Sequence(Arc<[Command]>),
}

/// A sequence proposed without a command in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptySequence;

impl Proposal {
    pub fn new(cmd: Command) -> Proposal {
        Proposal::One(Arc::new(cmd))
    }

    /// The commands as one entry: a sequence of one is that command.
    pub fn sequence(mut cmds: Vec<Command>) -> Result<Proposal, EmptySequence> {
        match cmds.len() {
            0 => Err(EmptySequence),
            1 => Ok(Proposal::new(cmds.remove(0))),
            _ => Ok(Proposal::Sequence(cmds.into())),
        }
    }

    /// The commands, in the order they are applied.
    pub fn commands(&self) -> &[Command] {
        match self {
            Proposal::One(cmd) => std::slice::from_ref(&**cmd),
            Proposal::Sequence(cmds) => cmds,
        }
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cmd) in self.commands().iter().enumerate() {
            if i > 0 {
                f.write_str(", then ")?;
            }
            write!(f, "{} for {}", cmd.body.kind(), cmd.tenant)?;
        }
        Ok(())
    }
}

const SEQUENCE_KEY: &str = "sequence";

impl Serialize for Proposal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Proposal::One(cmd) => cmd.serialize(s),
            Proposal::Sequence(cmds) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(SEQUENCE_KEY, &**cmds)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Proposal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ProposalVisitor)
    }
}

/// Tells the two forms apart by the first key, without buffering the
/// entry: a command never has a `sequence` field, and a command's first
/// key is handed back to the command's own deserializer.
struct ProposalVisitor;

impl<'de> Visitor<'de> for ProposalVisitor {
    type Value = Proposal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a command, or {\"sequence\": [commands]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Proposal, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(de::Error::custom("an empty object is not a command"));
        };
        if first == SEQUENCE_KEY {
            let cmds: Vec<Command> = map.next_value()?;
            if let Some(extra) = map.next_key::<String>()? {
                return Err(de::Error::unknown_field(&extra, &[SEQUENCE_KEY]));
            }
            if cmds.len() < 2 {
                return Err(de::Error::invalid_length(
                    cmds.len(),
                    &"a sequence of at least two commands",
                ));
            }
            return Ok(Proposal::Sequence(cmds.into()));
        }
        let cmd = Command::deserialize(de::value::MapAccessDeserializer::new(FirstKeyBack {
            first: Some(first),
            rest: map,
        }))?;
        Ok(Proposal::new(cmd))
    }
}

/// A map whose first key was already read, read again from the start.
struct FirstKeyBack<A> {
    first: Option<String>,
    rest: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FirstKeyBack<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => self.rest.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.rest.next_value_seed(seed)
    }
}

/// What applying a committed proposal produced: the engine's events, or why
/// it refused the command. A refusal is still a committed, replayed fact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    Events(Vec<Event>),
    Refused(Rejection),
    /// What a sequence's commands produced.
    Sequence(SequenceApplied),
    /// Blank and membership entries produce nothing for clients.
    Nothing,
}

/// What a sequence's commands produced, in order: the events of each
/// command applied, then the refusal that ended it, if one did. The
/// commands after a refused one were not applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SequenceApplied {
    pub events: Vec<Vec<Event>>,
    pub refused: Option<Rejection>,
}

impl Applied {
    /// The answer as a sequence's: a single command's answer is that of a
    /// sequence of one. `None` for an entry that was no command.
    pub fn into_sequence(self) -> Option<SequenceApplied> {
        match self {
            Applied::Events(events) => Some(SequenceApplied {
                events: vec![events],
                refused: None,
            }),
            Applied::Refused(r) => Some(SequenceApplied {
                events: Vec::new(),
                refused: Some(r),
            }),
            Applied::Sequence(s) => Some(s),
            Applied::Nothing => None,
        }
    }
}

/// A write the leader committed for a follower that forwarded it: where
/// in the log it went, so the follower can answer once it has applied that
/// far (its caller then reads its own write), and what applying it gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    pub index: u64,
    pub applied: Applied,
}

openraft::declare_raft_types!(
    /// AURA's Raft types.
    pub AuraRaft:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = NodeInfo,
);

pub type Raft = openraft::Raft<AuraRaft, crate::state_machine::EngineStore>;
pub type LogId = openraft::type_config::alias::LogIdOf<AuraRaft>;
pub type Vote = openraft::type_config::alias::VoteOf<AuraRaft>;
pub type Entry = openraft::type_config::alias::EntryOf<AuraRaft>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<AuraRaft>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<AuraRaft>;
/// Snapshot bytes are shared, not copied, between the stored snapshot,
/// the transfers to followers and the file writer.
pub type SnapshotData = std::sync::Arc<SnapshotBody>;

/// The engine snapshot's bytes.
pub enum SnapshotBody {
    /// As read back from disk.
    Whole(Vec<u8>),
    /// As received from a leader, with the state the cluster listener
    /// restored from it to check it (a snapshot that does not restore is
    /// refused before openraft sees it): installing takes that state
    /// rather than restoring the bytes a second time.
    Received {
        /// The request body's own bytes, not a copy of them.
        bytes: axum::body::Bytes,
        restored: std::sync::Mutex<Option<Box<aura_engine::machine::RestoredState>>>,
    },
    /// As built here: the sealed audit segments are the state's own
    /// bytes, shared, so the latest snapshot kept in memory costs only
    /// the rest of the state (and the pieces are what
    /// [`crate::snapshot_file`] writes).
    Pieces(Vec<aura_engine::machine::snapshot_pieces::SnapshotPiece>),
}

/// The variant and length: a snapshot is far too large to print.
impl std::fmt::Debug for SnapshotBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            SnapshotBody::Whole(_) => "Whole",
            SnapshotBody::Received { .. } => "Received",
            SnapshotBody::Pieces(_) => "Pieces",
        };
        write!(f, "SnapshotBody::{kind}({} bytes)", self.len())
    }
}

impl SnapshotBody {
    /// The state restored from this snapshot on receipt, if it was and
    /// has not been taken yet.
    pub fn take_restored(&self) -> Option<aura_engine::machine::RestoredState> {
        match self {
            SnapshotBody::Received { restored, .. } => {
                let taken = restored.lock().unwrap_or_else(|e| e.into_inner()).take();
                taken.map(|state| *state)
            }
            SnapshotBody::Whole(_) | SnapshotBody::Pieces(_) => None,
        }
    }

    /// The bytes as they are held: one buffer (read or received), or
    /// pieces (built here).
    pub(crate) fn form(&self) -> BodyForm<'_> {
        match self {
            SnapshotBody::Whole(b) => BodyForm::Whole(b),
            SnapshotBody::Received { bytes, .. } => BodyForm::Whole(bytes),
            SnapshotBody::Pieces(p) => BodyForm::Pieces(p),
        }
    }

    pub fn len(&self) -> usize {
        match self.form() {
            BodyForm::Whole(b) => b.len(),
            BodyForm::Pieces(p) => p.iter().map(|p| p.bytes().len()).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, in the order they go.
    pub fn parts(&self) -> Vec<&[u8]> {
        match self.form() {
            BodyForm::Whole(b) => vec![b],
            BodyForm::Pieces(p) => p.iter().map(|p| p.bytes()).collect(),
        }
    }

    /// The bytes in one piece: joined (a copy) if built here.
    pub fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.parts()[..] {
            [one] => std::borrow::Cow::Borrowed(one),
            ref parts => std::borrow::Cow::Owned(parts.concat()),
        }
    }
}

/// See [`SnapshotBody::form`].
pub(crate) enum BodyForm<'a> {
    Whole(&'a [u8]),
    Pieces(&'a [aura_engine::machine::snapshot_pieces::SnapshotPiece]),
}

pub type Snapshot = openraft::type_config::alias::SnapshotOf<AuraRaft, SnapshotData>;

#[cfg(test)]
pub(crate) mod tests {
    use aura_engine::actor::Actor;
    use aura_engine::machine::{CommandBody, SigningSeed};
    use aura_engine::time::Timestamp;

    use super::*;

    #[test]
    fn a_received_snapshot_hands_over_its_restored_state_once() {
        let bytes = aura_engine::machine::EngineState::new().snapshot();
        let state = aura_engine::machine::RestoredState::of(&bytes).unwrap();
        let body = SnapshotBody::Received {
            bytes: bytes.clone().into(),
            restored: std::sync::Mutex::new(Some(Box::new(state))),
        };
        assert_eq!(&*body.to_bytes(), &bytes[..]);
        assert!(body.take_restored().is_some());
        assert!(body.take_restored().is_none(), "taken already");
        assert!(SnapshotBody::Whole(bytes.clone()).take_restored().is_none());
        assert_eq!(
            format!("{body:?}"),
            format!("SnapshotBody::Received({} bytes)", bytes.len())
        );
    }

    /// A command creating tenant `t{i}`, for tests of what carries commands.
    pub(crate) fn create(i: u8) -> Command {
        Command {
            tenant: format!("t{i}").parse().unwrap(),
            at: Timestamp(1_000 + i64::from(i)),
            actor: Actor::Platform,
            body: CommandBody::CreateTenant {
                display_name: format!("Tenant {i}"),
                signing_key_seed: SigningSeed([i; 32]).into(),
            },
            precondition: None,
        }
    }

    #[test]
    fn one_command_is_written_as_entries_always_were_and_a_sequence_as_its_list() {
        let one = Proposal::new(create(1));
        assert_eq!(
            serde_json::to_value(&one).unwrap(),
            serde_json::to_value(create(1)).unwrap()
        );
        let read: Proposal = serde_json::from_value(serde_json::to_value(create(1)).unwrap())
            .expect("a command as logged before sequences existed");
        assert_eq!(read, one);

        let seq = Proposal::sequence(vec![create(1), create(2), create(3)]).unwrap();
        let json = serde_json::to_value(&seq).unwrap();
        assert_eq!(json["sequence"].as_array().map(Vec::len), Some(3));
        let read: Proposal = serde_json::from_value(json).unwrap();
        assert_eq!(read, seq);
        assert_eq!(read.commands(), [create(1), create(2), create(3)]);
    }

    #[test]
    fn a_sequence_holds_at_least_two_commands_and_nothing_else() {
        assert_eq!(Proposal::sequence(Vec::new()), Err(EmptySequence));
        assert_eq!(
            Proposal::sequence(vec![create(1)]).unwrap(),
            Proposal::new(create(1))
        );
        let one = serde_json::json!({"sequence": [create(1)]});
        let extra = serde_json::json!({"sequence": [create(1), create(2)], "at": 5});
        for bad in [one, extra, serde_json::json!({})] {
            assert!(
                serde_json::from_value::<Proposal>(bad.clone()).is_err(),
                "{bad} was read as a proposal"
            );
        }
        // A command keeps refusing what it always refused.
        let mut unknown = serde_json::to_value(create(1)).unwrap();
        unknown["extra"] = 1.into();
        assert!(serde_json::from_value::<Proposal>(unknown).is_err());
    }
}
