//! The cluster listener: Raft RPCs from peers and cluster management from
//! `aura cluster` and other nodes. Every request must carry a valid MAC
//! under the cluster secret and a nonce not used before, both checked
//! before its body is read; anything else is refused and logged. Every
//! answer carries a MAC over the request's MAC, its status and its body.

use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{AuthError, ClusterSecret, HEADER_NODE, HEADER_RESPONSE_MAC, now_ms};
use crate::log_format;
use crate::network::decode_snapshot;
use crate::node::{AddLearner, MembershipChange, Node};
use crate::replay::ReplayGuard;
use crate::types::{AuraRaft, Proposal, Snapshot};

const MAX_RPC_BYTES: usize = 256 * 1024 * 1024;

/// Who sent an authenticated request: a node id, or 0 for an operator.
#[derive(Clone, Copy, Debug)]
struct Sender(u64);

#[derive(Clone)]
struct Ctx {
    node: Node,
    secret: ClusterSecret,
    replay: std::sync::Arc<ReplayGuard>,
}

pub fn router(
    node: Node,
    secret: ClusterSecret,
) -> IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    let ctx = Ctx {
        node,
        secret,
        replay: Default::default(),
    };
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/pre-vote", post(pre_vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/transfer-leader", post(transfer_leader))
        .route("/cluster/status", get(status))
        .route("/cluster/propose", post(propose))
        .route(crate::forwarder::PATH, post(propose_batch))
        .route("/cluster/read-index", post(read_index))
        .route("/cluster/learners", post(add_learner))
        .route("/cluster/membership", post(membership))
        .layer(middleware::from_fn_with_state(ctx.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_RPC_BYTES))
        .with_state(ctx)
        .into_make_service_with_connect_info::<SocketAddr>()
}

async fn authenticate(
    State(ctx): State<Ctx>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let header = |name: &'static str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = parts.uri.path().to_owned();
    let refuse = |e: AuthError| {
        tracing::warn!(%remote, %path, claimed_node = ?header(HEADER_NODE), error = %e, "refused unauthenticated cluster request");
        (
            StatusCode::UNAUTHORIZED,
            format!("cluster authentication failed: {e}"),
        )
            .into_response()
    };
    // Headers first: a stranger or a replay is refused before a byte of
    // its body is read.
    let now = now_ms();
    let auth = match ctx
        .secret
        .verify_headers(parts.method.as_str(), &path, header, now)
    {
        Ok(auth) => auth,
        Err(e) => return refuse(e),
    };
    if !ctx
        .replay
        .first_use(auth.node, auth.nonce, auth.time_ms, now)
    {
        return refuse(AuthError::Replayed);
    }
    let bytes = match axum::body::to_bytes(body, MAX_RPC_BYTES).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response(),
    };
    if let Err(e) = auth.check_body(&bytes) {
        return refuse(e);
    }
    let response = if ctx.node.faults().refuses_from(auth.node) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cut off by fault injection",
        )
            .into_response()
    } else {
        let mut req = Request::from_parts(parts, bytes.into());
        req.extensions_mut().insert(Sender(auth.node));
        next.run(req).await
    };
    sign_response(&ctx, auth.tag(), response).await
}

/// Adds the response MAC, which covers the request's MAC, the status and
/// the body, so the caller can tell this node's answer to its request
/// from anything else.
async fn sign_response(ctx: &Ctx, request: &[u8; 32], response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_RPC_BYTES).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let mac = ctx
        .secret
        .sign_response(request, parts.status.as_u16(), &bytes);
    let headers = &mut parts.headers;
    headers.insert(
        HEADER_RESPONSE_MAC,
        HeaderValue::from_str(&mac).expect("base64 is a header value"),
    );
    headers.insert(
        log_format::HEADER,
        HeaderValue::from_static(ctx.node.formats().own().header_value()),
    );
    Response::from_parts(parts, bytes.into())
}

fn json<T: Serialize>(v: &T) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).expect("responses serialize"),
    )
        .into_response()
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("malformed request: {e}"))
}

fn bad_request(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, reason).into_response()
}

/// Raft results travel as `Result<T, String>`: the only errors the Raft
/// handlers return are fatal ones, which the caller treats as unreachable.
fn raft_result<T: Serialize, E: std::fmt::Display>(r: Result<T, E>) -> Response {
    json(&r.map_err(|e| e.to_string()))
}

async fn append(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    match parse::<AppendEntriesRequest<AuraRaft>>(&body) {
        Ok(req) => {
            let format = headers.get(log_format::HEADER);
            ctx.node
                .formats()
                .announce(format.and_then(|v| v.to_str().ok()));
            raft_result(ctx.node.raft().append_entries(req).await)
        }
        Err(e) => bad_request(e),
    }
}

async fn vote(State(ctx): State<Ctx>, body: Bytes) -> Response {
    match parse::<VoteRequest<AuraRaft>>(&body) {
        Ok(req) => raft_result(ctx.node.raft().vote(req).await),
        Err(e) => bad_request(e),
    }
}

async fn pre_vote(State(ctx): State<Ctx>, body: Bytes) -> Response {
    match parse::<VoteRequest<AuraRaft>>(&body) {
        Ok(req) => raft_result(ctx.node.raft().pre_vote(req).await),
        Err(e) => bad_request(e),
    }
}

async fn snapshot(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let (vote, meta, data) = match decode_snapshot(&body) {
        Ok(x) => x,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    // Check the engine snapshot before openraft sees it: a snapshot that
    // does not restore must be refused, not installed.
    let checked = tokio::task::spawn_blocking(move || {
        aura_engine::machine::RestoredState::of(&data).map(|state| (data, state))
    })
    .await;
    let (bytes, state) = match checked {
        Ok(Ok(restored)) => restored,
        Ok(Err(e)) => {
            return (StatusCode::BAD_REQUEST, format!("snapshot refused: {e}")).into_response();
        }
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let snap = Snapshot {
        meta,
        snapshot: std::sync::Arc::new(crate::types::SnapshotBody::Received {
            bytes,
            restored: std::sync::Mutex::new(Some(Box::new(state))),
        }),
    };
    raft_result(ctx.node.raft().install_full_snapshot(vote, snap).await)
}

async fn transfer_leader(State(ctx): State<Ctx>, body: Bytes) -> Response {
    match parse::<TransferLeaderRequest<AuraRaft>>(&body) {
        Ok(req) => raft_result(ctx.node.raft().handle_transfer_leader(req).await),
        Err(e) => bad_request(e),
    }
}

async fn status(State(ctx): State<Ctx>) -> Response {
    json(&ctx.node.status())
}

/// From an operator or client the proposal goes wherever the leader is;
/// from a peer it was already forwarded once and is not sent on again, so
/// a request never bounces between nodes while leadership moves.
async fn propose(
    State(ctx): State<Ctx>,
    Extension(sender): Extension<Sender>,
    body: Bytes,
) -> Response {
    match parse(&body) {
        Ok(cmd) if sender.0 == 0 => json(&ctx.node.propose(cmd).await),
        Ok(cmd) => json(&ctx.node.propose_here(cmd).await),
        Err(e) => bad_request(e),
    }
}

/// A follower's forwarded proposals, written here as they are: like a
/// single forwarded proposal, never sent on.
async fn propose_batch(
    State(ctx): State<Ctx>,
    Extension(sender): Extension<Sender>,
    body: Bytes,
) -> Response {
    if sender.0 == 0 {
        return (
            StatusCode::FORBIDDEN,
            "only cluster members forward batches; propose one command at /cluster/propose",
        )
            .into_response();
    }
    match parse::<Vec<Proposal>>(&body) {
        Ok(proposals) => json(&ctx.node.propose_here_all(proposals).await),
        Err(e) => bad_request(e),
    }
}

async fn read_index(State(ctx): State<Ctx>) -> Response {
    json(&ctx.node.read_index_here().await)
}

async fn add_learner(State(ctx): State<Ctx>, body: Bytes) -> Response {
    match parse::<AddLearner>(&body) {
        Ok(req) => json(&ctx.node.change(MembershipChange::AddLearner(req)).await),
        Err(e) => bad_request(e),
    }
}

async fn membership(State(ctx): State<Ctx>, body: Bytes) -> Response {
    match parse::<MembershipChange>(&body) {
        Ok(change) => json(&ctx.node.change(change).await),
        Err(e) => bad_request(e),
    }
}
