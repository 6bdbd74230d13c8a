//! Raft RPC over HTTP: the client side. Every request is signed with the
//! cluster secret and every answer checked against it (see
//! [`auth`](crate::auth)); the server side is in [`service`](crate::service).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aura_engine::machine::EngineState;
use axum::body::Bytes;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{ClusterSecret, HEADER_RESPONSE_MAC, now_ms};
use crate::log_format::{self, LogFormat, LogFormats};
use crate::types::{AuraRaft, NodeId, NodeInfo, Snapshot, SnapshotMeta, Vote};

/// Peers this node pretends it cannot reach. Tests use it to partition a
/// cluster without touching the host's network: a cut peer is neither
/// called nor heard, a peer this node is deaf to is called but not heard
/// (a one-way partition).
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<RwLock<FaultSet>>);

#[derive(Debug, Default)]
struct FaultSet {
    cut: BTreeSet<NodeId>,
    deaf_to: BTreeSet<NodeId>,
}

impl Faults {
    pub fn cut(&self, peer: NodeId) {
        self.write().cut.insert(peer);
    }
    /// Refuses `peer`'s requests while still sending it this node's own.
    pub fn deafen(&self, peer: NodeId) {
        self.write().deaf_to.insert(peer);
    }
    pub fn heal(&self, peer: NodeId) {
        let mut f = self.write();
        f.cut.remove(&peer);
        f.deaf_to.remove(&peer);
    }
    pub fn heal_all(&self) {
        *self.write() = FaultSet::default();
    }
    /// Whether calls to `peer` are refused.
    pub fn is_cut(&self, peer: NodeId) -> bool {
        self.read().cut.contains(&peer)
    }
    /// Whether requests from `peer` are refused.
    pub fn refuses_from(&self, peer: NodeId) -> bool {
        let f = self.read();
        f.cut.contains(&peer) || f.deaf_to.contains(&peer)
    }
    fn read(&self) -> std::sync::RwLockReadGuard<'_, FaultSet> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, FaultSet> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a signed call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request never reached the peer (no connection was made), so
    /// the peer did nothing with it.
    #[error("peer {addr} is unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The request may have reached the peer, but no whole answer came
    /// back (timeout, connection lost): the peer may have acted on it.
    #[error("peer {addr} did not answer: {reason}")]
    NoAnswer { addr: String, reason: String },
    #[error("peer {addr} answered {status}: {body}")]
    Status {
        addr: String,
        status: u16,
        body: String,
    },
    #[error("peer {addr} sent a malformed answer: {reason}")]
    Malformed { addr: String, reason: String },
    /// An answer (status `status`) not made by a holder of the cluster
    /// secret for this request: a forgery, or a refusal of ours.
    #[error("peer {addr} answered {status} without proof it is the peer's answer: {reason}")]
    Unauthenticated {
        addr: String,
        status: u16,
        reason: String,
    },
}

/// Signs and sends requests to other nodes' cluster listeners.
#[derive(Clone, Debug)]
pub struct PeerClient {
    http: reqwest::Client,
    secret: ClusterSecret,
    me: NodeId,
    faults: Faults,
    formats: Arc<LogFormats>,
}

impl PeerClient {
    /// A client for an operator's tool, which is no member.
    pub fn new(me: NodeId, secret: ClusterSecret, faults: Faults) -> PeerClient {
        PeerClient::for_node(
            me,
            secret,
            faults,
            Arc::new(LogFormats::new(LogFormat::NEWEST)),
        )
    }

    /// The client of a node, which tells and learns log formats.
    pub(crate) fn for_node(
        me: NodeId,
        secret: ClusterSecret,
        faults: Faults,
        formats: Arc<LogFormats>,
    ) -> PeerClient {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client builds");
        PeerClient {
            http,
            secret,
            me,
            faults,
            formats,
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// POSTs raw bytes to `http://{addr}{path}` and returns the body.
    pub async fn post_bytes(
        &self,
        target: Option<NodeId>,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.call(target, reqwest::Method::POST, addr, path, body, timeout)
            .await
    }

    pub async fn get_bytes(
        &self,
        addr: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.call(None, reqwest::Method::GET, addr, path, Vec::new(), timeout)
            .await
    }

    async fn call(
        &self,
        target: Option<NodeId>,
        method: reqwest::Method,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        if target.is_some_and(|t| self.faults.is_cut(t)) {
            return Err(CallError::Unreachable {
                addr: addr.into(),
                reason: "cut off by fault injection".into(),
            });
        }
        let mut req = self
            .http
            .request(method.clone(), format!("http://{addr}{path}"))
            .timeout(timeout);
        let signed = self
            .secret
            .sign(method.as_str(), path, self.me, now_ms(), &body);
        for (name, value) in signed.headers {
            req = req.header(name, value);
        }
        // Only a follower's append reads it (see `log_format`).
        req = req.header(log_format::HEADER, self.formats.leading().header_value());
        let resp = req.body(body).send().await.map_err(|e| {
            let (addr, reason) = (addr.into(), error_chain(&e));
            if e.is_connect() {
                CallError::Unreachable { addr, reason }
            } else {
                CallError::NoAnswer { addr, reason }
            }
        })?;
        if let Some(peer) = target {
            let header = resp.headers().get(log_format::HEADER);
            self.formats
                .heard(peer, header.and_then(|v| v.to_str().ok()));
        }
        let status = resp.status();
        let mac = resp
            .headers()
            .get(HEADER_RESPONSE_MAC)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| CallError::NoAnswer {
            addr: addr.into(),
            reason: error_chain(&e),
        })?;
        // Nothing of an answer is believed, not even a refusal, unless the
        // peer that holds the secret made it for this request.
        self.secret
            .verify_response(&signed.tag, status.as_u16(), mac.as_deref(), &bytes)
            .map_err(|e| CallError::Unauthenticated {
                addr: addr.into(),
                status: status.as_u16(),
                reason: e.to_string(),
            })?;
        if !status.is_success() {
            return Err(CallError::Status {
                addr: addr.into(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes.to_vec())
    }

    pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: Option<NodeId>,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let body = serde_json::to_vec(req).expect("requests serialize");
        let bytes = self.post_bytes(target, addr, path, body, timeout).await?;
        serde_json::from_slice(&bytes).map_err(|e| CallError::Malformed {
            addr: addr.into(),
            reason: e.to_string(),
        })
    }
}

/// An error with its causes (refused, DNS, TLS...), on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Hands openraft one [`Peer`] per target node.
#[derive(Clone, Debug)]
pub struct HttpNetwork {
    client: PeerClient,
}

impl HttpNetwork {
    pub fn new(client: PeerClient) -> HttpNetwork {
        HttpNetwork { client }
    }
}

impl RaftNetworkFactory<AuraRaft> for HttpNetwork {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Peer {
        self.client.formats.client_opened(target);
        Peer {
            client: self.client.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// openraft keeps a client for each member it sends to; the formats a
/// leader may write are those its open clients' members read.
impl Drop for Peer {
    fn drop(&mut self) {
        self.client.formats.client_closed(self.target);
    }
}

#[derive(Debug)]
pub struct Peer {
    client: PeerClient,
    target: NodeId,
    addr: String,
}

/// Remote raft errors are fatal conditions of the peer (it is shutting
/// down); to this node that is the same as being unreachable.
type Remote<T> = Result<T, String>;

impl Peer {
    async fn rpc<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<AuraRaft>> {
        let r: Remote<Resp> = self
            .client
            .post_json(Some(self.target), &self.addr, path, req, option.hard_ttl())
            .await
            .map_err(to_rpc_error)?;
        r.map_err(|e| {
            RPCError::Unreachable(Unreachable::from_string(format!(
                "peer {}: {e}",
                self.target
            )))
        })
    }
}

impl CallError {
    /// Whether openraft should back off from the peer: it is unreachable,
    /// or too slow to answer, which needs the same.
    fn peer_unreachable(&self) -> bool {
        matches!(
            self,
            CallError::Unreachable { .. } | CallError::NoAnswer { .. }
        )
    }
}

fn to_rpc_error(e: CallError) -> RPCError<AuraRaft> {
    if e.peer_unreachable() {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

/// A snapshot on the wire: `u32le header length, JSON {vote, meta}, data`.
/// The data comes as `parts`, so that a snapshot built in pieces is copied
/// once, into the body.
pub fn encode_snapshot(vote: &Vote, meta: &SnapshotMeta, parts: &[&[u8]]) -> Vec<u8> {
    let header = serde_json::to_vec(&(vote, meta)).expect("snapshot header serializes");
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(4 + header.len() + len);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// The data is a view of `bytes`, not a copy: a snapshot is as large as
/// the state.
pub fn decode_snapshot(bytes: &Bytes) -> Result<(Vote, SnapshotMeta, Bytes), String> {
    let len = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("snapshot body too short")?;
    let header = bytes.get(4..4 + len).ok_or("snapshot header truncated")?;
    let (vote, meta): (Vote, SnapshotMeta) =
        serde_json::from_slice(header).map_err(|e| format!("bad snapshot header: {e}"))?;
    Ok((vote, meta, bytes.slice(4 + len..)))
}

impl RaftNetworkV2<AuraRaft> for Peer {
    type SnapshotData = crate::types::SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<AuraRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<AuraRaft>, RPCError<AuraRaft>> {
        self.rpc("/raft/append", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<AuraRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<AuraRaft>, RPCError<AuraRaft>> {
        self.rpc("/raft/vote", &rpc, &option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<AuraRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<AuraRaft>, RPCError<AuraRaft>> {
        self.rpc("/raft/pre-vote", &rpc, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<AuraRaft>, StreamingError<AuraRaft>> {
        let older = self.client.formats.of(self.target) < LogFormat::MissionDigests;
        let data = snapshot.snapshot.clone();
        let body = tokio::task::spawn_blocking(move || {
            if older {
                // A member that reads no newer format gets the one it reads.
                EngineState::snapshot_as_format_2(&data.to_bytes())
                    .map(|b| encode_snapshot(&vote, &snapshot.meta, &[&b]))
            } else {
                Ok(encode_snapshot(&vote, &snapshot.meta, &data.parts()))
            }
        })
        .await
        .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?
        .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let send = self.client.post_bytes(
            Some(self.target),
            &self.addr,
            "/raft/snapshot",
            body,
            option.hard_ttl(),
        );
        let bytes = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            r = send => r.map_err(|e| if e.peer_unreachable() {
                StreamingError::Unreachable(Unreachable::new(&e))
            } else {
                StreamingError::Network(NetworkError::new(&e))
            })?,
        };
        let r: Remote<SnapshotResponse<AuraRaft>> = serde_json::from_slice(&bytes)
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        r.map_err(|e| {
            StreamingError::Unreachable(Unreachable::from_string(format!(
                "peer {}: {e}",
                self.target
            )))
        })
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<AuraRaft>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<AuraRaft>, RPCError<AuraRaft>> {
        self.rpc("/raft/transfer-leader", &req, &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_on_the_wire_decodes_to_a_view_of_the_request_body() {
        let vote = Vote::new(3, 1);
        let meta = SnapshotMeta::default();
        let body = Bytes::from(encode_snapshot(&vote, &meta, &[b"{\"a\":", b"1}"]));
        let (v, m, data) = decode_snapshot(&body).unwrap();
        assert_eq!((v, m), (vote, meta));
        assert_eq!(&data[..], b"{\"a\":1}");
        let end = body.as_ptr() as usize + body.len();
        assert_eq!(
            data.as_ptr() as usize,
            end - data.len(),
            "the data is the body's own bytes"
        );
        assert!(decode_snapshot(&Bytes::from_static(b"\x09\0\0\0{}")).is_err());
    }
}
