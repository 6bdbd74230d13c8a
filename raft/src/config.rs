//! Node configuration, checked before anything on disk is touched.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::ClusterSecret;
use aura_engine::identity::{Kek, KekId};

use crate::log_format::LogFormat;
use crate::types::{NodeId, NodeInfo};

/// Election and heartbeat timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl Timing {
    /// One data centre or one region: round trips under ~5 ms.
    pub const LAN: Timing = Timing {
        heartbeat_ms: 100,
        election_min_ms: 400,
        election_max_ms: 800,
    };
    /// Members in different regions: round trips of 50–250 ms. Elections
    /// wait several round trips so one slow link does not depose a leader.
    pub const WAN: Timing = Timing {
        heartbeat_ms: 300,
        election_min_ms: 1_500,
        election_max_ms: 3_000,
    };

    pub fn profile(name: &str) -> Option<Timing> {
        match name {
            "lan" => Some(Timing::LAN),
            "wan" => Some(Timing::WAN),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.heartbeat_ms == 0
            || self.election_min_ms <= self.heartbeat_ms * 2
            || self.election_max_ms <= self.election_min_ms
        {
            return Err(ConfigError::Timing(*self));
        }
        Ok(())
    }
}

/// How a node comes up.
#[derive(Clone, Debug)]
pub enum Bootstrap {
    /// A fresh data dir forms a cluster of these voters (including this
    /// node); the lowest id initializes it. With no peers that is the
    /// embedded one-node cluster.
    Form(BTreeMap<NodeId, NodeInfo>),
    /// A fresh data dir asks the cluster at this address to add it as a
    /// learner; an administrator promotes it.
    Join(String),
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub data_dir: PathBuf,
    /// Where the cluster listener binds.
    pub listen: SocketAddr,
    /// The address peers use to reach it (defaults to `listen`).
    pub advertise: String,
    pub region: String,
    pub secret: ClusterSecret,
    /// Opens the tenants' sealed signing keys; the same on every member,
    /// and never in the log ([`aura_engine::identity::sealed`]).
    pub kek: Kek,
    pub bootstrap: Bootstrap,
    pub timing: Timing,
    /// Build a snapshot after this many applied entries, and once the log
    /// holds a share of the last snapshot's size
    /// ([`crate::snapshot_schedule`]).
    pub snapshot_every: u64,
    /// The newest log entry form this node lets the cluster write; an
    /// older one holds the whole cluster at it ([`crate::log_format`]).
    pub log_format: LogFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("node id must be at least 1")]
    ZeroId,
    #[error("region label `{0}` is not valid: use 1-63 letters, digits, `-` or `_`")]
    Region(String),
    #[error("peer {id} address `{addr}` is not host:port")]
    PeerAddr { id: NodeId, addr: String },
    #[error("peer {id} is this node's own id but has address {addr}, not {advertise}")]
    IdClash {
        id: NodeId,
        addr: String,
        advertise: String,
    },
    #[error("peers {a} and {b} have the same address {addr}")]
    SameAddr { a: NodeId, b: NodeId, addr: String },
    #[error("this node (id {0}) is not among the members it is told to form a cluster with")]
    NotAMember(NodeId),
    #[error(
        "timing {0:?} is not usable: the election timeout must exceed two heartbeats and max must exceed min"
    )]
    Timing(Timing),
    #[error("data dir {0} exists and is not a directory")]
    DataDirNotDir(PathBuf),
    #[error("data dir {dir} belongs to node {found}, not node {wanted}; refusing to start")]
    WrongNode {
        dir: PathBuf,
        found: NodeId,
        wanted: NodeId,
    },
    #[error("data dir {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "data dir {dir} was written under key-encryption key {found}, and this node was given {given}: start it with the cluster's KEK"
    )]
    OtherKek {
        dir: PathBuf,
        found: KekId,
        given: KekId,
    },
    #[error("data dir {dir} has a malformed node.json: {reason}")]
    NodeFile { dir: PathBuf, reason: String },
}

pub(crate) fn valid_region(r: &str) -> bool {
    (1..=63).contains(&r.len())
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn valid_addr(a: &str) -> bool {
    match a.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) && !a.contains('/')
        }
        None => false,
    }
}

/// What a data dir records about its node.
#[derive(Debug, Serialize, Deserialize)]
struct NodeFile {
    node_id: NodeId,
    /// The KEK the node first started with: its state holds tenant keys
    /// sealed under it, so it must not start with another. Absent in data
    /// dirs from before keys were sealed, and then recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kek: Option<KekId>,
}

impl NodeConfig {
    /// Checks everything that can be checked without touching the data dir.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        if !valid_region(&self.region) {
            return Err(ConfigError::Region(self.region.clone()));
        }
        self.timing.check()?;
        if let Bootstrap::Form(members) = &self.bootstrap
            && !members.is_empty()
        {
            let mut seen: BTreeMap<&str, NodeId> = BTreeMap::new();
            for (id, info) in members {
                if *id == 0 {
                    return Err(ConfigError::ZeroId);
                }
                if !valid_addr(&info.addr) {
                    return Err(ConfigError::PeerAddr {
                        id: *id,
                        addr: info.addr.clone(),
                    });
                }
                if !valid_region(&info.region) {
                    return Err(ConfigError::Region(info.region.clone()));
                }
                if *id == self.id && info.addr != self.advertise {
                    return Err(ConfigError::IdClash {
                        id: *id,
                        addr: info.addr.clone(),
                        advertise: self.advertise.clone(),
                    });
                }
                if let Some(other) = seen.insert(&info.addr, *id) {
                    return Err(ConfigError::SameAddr {
                        a: other,
                        b: *id,
                        addr: info.addr.clone(),
                    });
                }
            }
            if !members.contains_key(&self.id) {
                return Err(ConfigError::NotAMember(self.id));
            }
        }
        if let Bootstrap::Join(addr) = &self.bootstrap
            && !valid_addr(addr)
        {
            return Err(ConfigError::PeerAddr {
                id: 0,
                addr: addr.clone(),
            });
        }
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::DataDirNotDir(self.data_dir.clone()));
        }
        Ok(())
    }

    /// Binds the data dir to this node id, or checks that it already is.
    /// Returns whether the dir was fresh.
    pub fn claim_data_dir(&self) -> Result<bool, ConfigError> {
        let dir = &self.data_dir;
        let io = |source| ConfigError::Io {
            dir: dir.clone(),
            source,
        };
        let file = node_file(dir);
        match std::fs::read(&file) {
            Ok(bytes) => {
                let found: NodeFile =
                    serde_json::from_slice(&bytes).map_err(|e| ConfigError::NodeFile {
                        dir: dir.clone(),
                        reason: e.to_string(),
                    })?;
                if found.node_id != self.id {
                    return Err(ConfigError::WrongNode {
                        dir: dir.clone(),
                        found: found.node_id,
                        wanted: self.id,
                    });
                }
                match found.kek {
                    Some(found) if found != self.kek.id() => Err(ConfigError::OtherKek {
                        dir: dir.clone(),
                        found,
                        given: self.kek.id(),
                    }),
                    Some(_) => Ok(false),
                    None => self.write_node_file(&file).map(|()| false).map_err(io),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                self.write_node_file(&file).map_err(io)?;
                Ok(true)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn write_node_file(&self, file: &Path) -> std::io::Result<()> {
        let tmp = file.with_extension("tmp");
        let record = NodeFile {
            node_id: self.id,
            kek: Some(self.kek.id()),
        };
        std::fs::write(&tmp, serde_json::to_vec(&record).expect("serializes"))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all())?;
        std::fs::rename(&tmp, file)?;
        crate::log_file::sync_dir(file)
    }

    pub fn raft_dir(&self) -> PathBuf {
        self.data_dir.join("raft")
    }

    pub(crate) fn snapshot_schedule(&self) -> crate::snapshot_schedule::SnapshotSchedule {
        crate::snapshot_schedule::SnapshotSchedule {
            every: self.snapshot_every,
        }
    }

    pub(crate) fn raft_config(&self) -> openraft::Config {
        openraft::Config {
            cluster_name: "aura".into(),
            heartbeat_interval: self.timing.heartbeat_ms,
            election_timeout_min: self.timing.election_min_ms,
            election_timeout_max: self.timing.election_max_ms,
            install_snapshot_timeout: 30_000,
            // Snapshots are asked for by `snapshot_schedule`, which also
            // weighs the state's size against the log's.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 1_000.min(self.snapshot_every),
            enable_pre_vote: Some(true),
            ..Default::default()
        }
    }
}

fn node_file(dir: &Path) -> PathBuf {
    dir.join("node.json")
}
