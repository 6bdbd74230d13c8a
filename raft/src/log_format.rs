//! Which forms of log entry, and of snapshot, the cluster may write.
//!
//! A node reads every entry form that older versions wrote, but an older
//! node cannot read a newer form: an entry it cannot read stops it, and a
//! snapshot it cannot read leaves it behind. In a
//! rolling upgrade the old and new versions serve side by side, so the
//! leader writes a form only once every member has said that it reads it.
//!
//! - Every answer to a Raft RPC carries the answering node's format in
//!   [`HEADER`]. An older version sends no header, which reads as
//!   [`LogFormat::Commands`].
//! - The leader writes the oldest format among itself and the members it
//!   replicates to. A member it has not heard from yet counts as the
//!   oldest.
//! - The leader sends that format in the same header on every request, and
//!   followers take it from each append. A follower's proposals then take
//!   the same form as the leader's, so the leader never receives a form
//!   it is not writing.
//!
//! A node can be configured to advertise an older format than it reads
//! ([`crate::NodeConfig::log_format`]). That holds the whole cluster at
//! that format, which keeps a downgrade possible until the upgrade is
//! final: a node cannot start on a log holding entries its version cannot
//! read.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::types::NodeId;

/// The header that carries a format: a node's own on answers, the
/// cluster's on the leader's requests.
pub const HEADER: &str = "x-aura-log-format";

/// The entry forms a node reads, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogFormat {
    /// One command per entry: every version reads it.
    Commands = 1,
    /// Also sequences of commands in one entry ([`crate::Proposal`]).
    Sequences = 2,
    /// Also snapshots whose state digest takes each mission by its digest
    /// (`aura.engine-snapshot/3`). Below it a node writes its snapshots
    /// in format 2, and a member sends one in format 2 to a peer below it.
    MissionDigests = 3,
}

impl LogFormat {
    /// The newest format this version reads and writes.
    pub const NEWEST: LogFormat = LogFormat::MissionDigests;

    pub fn level(self) -> u8 {
        self as u8
    }

    /// The level as [`HEADER`] carries it.
    pub(crate) fn header_value(self) -> &'static str {
        match self {
            LogFormat::Commands => "1",
            LogFormat::Sequences => "2",
            LogFormat::MissionDigests => "3",
        }
    }

    /// The format a peer announced. A level newer than this version knows
    /// still reads everything this version writes.
    fn from_level(level: u8) -> LogFormat {
        match level {
            0 | 1 => LogFormat::Commands,
            2 => LogFormat::Sequences,
            _ => LogFormat::MissionDigests,
        }
    }

    /// The format in a header; none (an older version) or a garbled one
    /// reads as the oldest.
    fn from_header(value: Option<&str>) -> LogFormat {
        value
            .and_then(|v| v.parse::<u8>().ok())
            .map_or(LogFormat::Commands, LogFormat::from_level)
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.level())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "log format `{0}` is not 1 (one command per entry), 2 (sequences too) or 3 (snapshots with mission digests too)"
)]
pub struct UnknownLogFormat(String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;
    fn from_str(s: &str) -> Result<LogFormat, UnknownLogFormat> {
        match s.trim() {
            "1" => Ok(LogFormat::Commands),
            "2" => Ok(LogFormat::Sequences),
            "3" => Ok(LogFormat::MissionDigests),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// What a node knows of the formats around it.
#[derive(Debug)]
pub(crate) struct LogFormats {
    own: LogFormat,
    /// The members this node has a Raft client for, with the format each
    /// last answered with and how many clients are open to it.
    peers: Mutex<BTreeMap<NodeId, Heard>>,
    /// The format the leader sent with its last append.
    announced: AtomicU8,
}

#[derive(Debug)]
struct Heard {
    format: LogFormat,
    clients: usize,
}

impl LogFormats {
    pub(crate) fn new(own: LogFormat) -> LogFormats {
        LogFormats {
            own,
            peers: Mutex::new(BTreeMap::new()),
            announced: AtomicU8::new(LogFormat::Commands.level()),
        }
    }

    pub(crate) fn own(&self) -> LogFormat {
        self.own
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Heard>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// openraft opened a client to `peer`: it is a member this node sends
    /// to, unheard until it answers.
    pub(crate) fn client_opened(&self, peer: NodeId) {
        self.peers()
            .entry(peer)
            .or_insert(Heard {
                format: LogFormat::Commands,
                clients: 0,
            })
            .clients += 1;
    }

    /// openraft dropped a client to `peer`; with its last client a removed
    /// member stops counting.
    pub(crate) fn client_closed(&self, peer: NodeId) {
        let mut peers = self.peers();
        if let Some(heard) = peers.get_mut(&peer) {
            heard.clients -= 1;
            if heard.clients == 0 {
                peers.remove(&peer);
            }
        }
    }

    /// `peer` answered with `header`.
    pub(crate) fn heard(&self, peer: NodeId, header: Option<&str>) {
        if let Some(heard) = self.peers().get_mut(&peer) {
            heard.format = LogFormat::from_header(header);
        }
    }

    /// The format `peer` last answered with; one not heard from yet
    /// counts as the oldest.
    pub(crate) fn of(&self, peer: NodeId) -> LogFormat {
        self.peers()
            .get(&peer)
            .map_or(LogFormat::Commands, |h| h.format)
    }

    /// The format this node writes while it leads: the oldest among it and
    /// the members it sends to.
    pub(crate) fn leading(&self) -> LogFormat {
        self.peers()
            .values()
            .map(|h| h.format)
            .fold(self.own, LogFormat::min)
    }

    /// The leader sent `header` with an append.
    pub(crate) fn announce(&self, header: Option<&str>) {
        let format = LogFormat::from_header(header).min(self.own);
        self.announced.store(format.level(), Ordering::Relaxed);
    }

    /// The format the leader last announced.
    pub(crate) fn announced(&self) -> LogFormat {
        LogFormat::from_level(self.announced.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_writes_the_oldest_format_among_the_members_it_sends_to() {
        let f = LogFormats::new(LogFormat::Sequences);
        assert_eq!(f.leading(), LogFormat::Sequences, "alone");
        f.client_opened(2);
        f.client_opened(3);
        assert_eq!(f.leading(), LogFormat::Commands, "unheard members");
        f.heard(2, Some("2"));
        assert_eq!(f.leading(), LogFormat::Commands, "3 still unheard");
        f.heard(3, None);
        assert_eq!(f.leading(), LogFormat::Commands, "3 runs an older version");
        f.heard(3, Some("7"));
        assert_eq!(f.leading(), LogFormat::Sequences, "3 runs a newer one");
        assert_eq!(f.of(3), LogFormat::MissionDigests);
        assert_eq!(f.of(2), LogFormat::Sequences);
        assert_eq!(f.of(4), LogFormat::Commands, "4 is unheard");
        f.heard(9, Some("1"));
        assert_eq!(f.leading(), LogFormat::Sequences, "9 is no member");
        f.client_opened(3);
        f.client_closed(3);
        f.heard(3, Some("1"));
        assert_eq!(f.leading(), LogFormat::Commands, "3 has a client left");
        f.client_closed(3);
        assert_eq!(f.leading(), LogFormat::Sequences, "3 was removed");
    }

    #[test]
    fn a_node_held_back_writes_its_own_format_whatever_it_is_told() {
        let f = LogFormats::new(LogFormat::Commands);
        f.client_opened(2);
        f.heard(2, Some("2"));
        assert_eq!(f.leading(), LogFormat::Commands);
        f.announce(Some("2"));
        assert_eq!(f.announced(), LogFormat::Commands);
    }

    #[test]
    fn followers_write_what_the_leader_last_announced() {
        let f = LogFormats::new(LogFormat::Sequences);
        assert_eq!(f.announced(), LogFormat::Commands, "nothing heard yet");
        f.announce(Some("2"));
        assert_eq!(f.announced(), LogFormat::Sequences);
        f.announce(None);
        assert_eq!(f.announced(), LogFormat::Commands, "an older leader");
        f.announce(Some("garbage"));
        assert_eq!(f.announced(), LogFormat::Commands);
    }

    #[test]
    fn operators_name_formats_by_number() {
        assert_eq!("1".parse::<LogFormat>().unwrap(), LogFormat::Commands);
        assert_eq!(" 2".parse::<LogFormat>().unwrap(), LogFormat::Sequences);
        assert_eq!("3".parse::<LogFormat>().unwrap(), LogFormat::MissionDigests);
        let e = "4".parse::<LogFormat>().unwrap_err().to_string();
        assert!(e.contains("`4`"), "{e}");
    }
}
