//! The other side of the gateway, for tests and benchmarks: an agent that
//! signs its calls (what an agent SDK does) and a tool that records every
//! call it receives.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use aura_engine::identity::{
    AgentCredential, ExecutionToken, KeyPair, RequestClaims, SignedRequest,
};
use aura_engine::mission::ToolCallRequest;
use aura_engine::time::Timestamp;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::gateway::{TOOL_CALLS_PATH, ToolCallEnvelope};

/// An agent: its identity key and the credential the tenant issued for it.
#[derive(Debug, Clone)]
pub struct TestAgent {
    pub key: KeyPair,
    pub credential: AgentCredential,
}

impl TestAgent {
    /// A new agent key (register its public half to get the credential).
    pub fn new_key() -> KeyPair {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the OS random source works");
        KeyPair::from_seed(seed)
    }

    /// The call signed now with a fresh nonce.
    pub fn sign(&self, token: &ExecutionToken, call: ToolCallRequest) -> ToolCallEnvelope {
        self.sign_with(token, call, crate::time::now(), &crate::random::hex(16))
    }

    /// The call signed at `timestamp` with `nonce`, for tests of those.
    pub fn sign_with(
        &self,
        token: &ExecutionToken,
        call: ToolCallRequest,
        timestamp: Timestamp,
        nonce: &str,
    ) -> ToolCallEnvelope {
        let claims = RequestClaims {
            method: "POST".into(),
            path: TOOL_CALLS_PATH.into(),
            body_digest: call.body_digest().expect("the call encodes"),
            timestamp,
            nonce: nonce.into(),
            credential_serial: self.credential.claims.serial,
            token: token.claims.token.clone(),
        };
        ToolCallEnvelope {
            call,
            credential: self.credential.clone(),
            token: token.clone(),
            request: SignedRequest::sign(claims, &self.key).expect("the request signs"),
        }
    }
}

/// One call as the tool received it.
#[derive(Debug, Clone)]
pub struct ReceivedCall {
    pub idempotency_key: String,
    pub body: Value,
}

type Respond = Arc<
    dyn Fn(ReceivedCall) -> Pin<Box<dyn Future<Output = (StatusCode, Value)> + Send>> + Send + Sync,
>;

#[derive(Clone)]
struct ToolState {
    calls: Arc<Mutex<Vec<ReceivedCall>>>,
    respond: Respond,
}

/// A local HTTP tool that records every call it receives.
#[derive(Clone)]
pub struct RecordingTool {
    /// POST here.
    pub url: String,
    calls: Arc<Mutex<Vec<ReceivedCall>>>,
}

impl std::fmt::Debug for RecordingTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingTool")
            .field("url", &self.url)
            .finish()
    }
}

async fn receive(
    State(state): State<ToolState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let call = ReceivedCall {
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body,
    };
    state
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(call.clone());
    let (status, answer) = (state.respond)(call).await;
    (status, Json(answer))
}

impl RecordingTool {
    /// Answers 200 with `{"ok": true, "echo": <arguments>}`.
    pub async fn start() -> RecordingTool {
        Self::start_with(|call| async move {
            (
                StatusCode::OK,
                json!({"ok": true, "echo": call.body["arguments"]}),
            )
        })
        .await
    }

    /// Answers with what `respond` returns for each call (after recording it).
    pub async fn start_with<F, Fut>(respond: F) -> RecordingTool
    where
        F: Fn(ReceivedCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (StatusCode, Value)> + Send + 'static,
    {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let state = ToolState {
            calls: calls.clone(),
            respond: Arc::new(move |c| Box::pin(respond(c))),
        };
        let app = axum::Router::new()
            .route("/call", axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback listener");
        let url = format!("http://{}/call", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        RecordingTool { url, calls }
    }

    pub fn calls(&self) -> Vec<ReceivedCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A tenant set up for gateway calls: namespace `prod` with the
/// simulator's policy, authority (approver-a L2, approver-b L3, group
/// `board` L4) and routing (confidential data on-prem only), the tool
/// `erp.post` (on-prem) called at `tool_url`, and the agent `bot`.
#[derive(Debug, Clone)]
pub struct GovernedTenant {
    pub tenant: String,
    pub admin: super::Client,
    pub agent: TestAgent,
}

impl GovernedTenant {
    pub async fn create(
        server: &super::TestServer,
        tenant: &str,
        tool_url: &str,
    ) -> GovernedTenant {
        use aura_engine::Actor;
        let admin = server.tenant_admin(tenant).await;
        admin
            .create_namespace(tenant, "prod")
            .await
            .expect("namespace");
        let tenant_id = aura_engine::ids::TenantId::new(tenant).expect("tenant id");
        let ns = aura_engine::ids::NamespaceId::new("prod").expect("namespace id");
        for body in aura_engine::sim::namespace_governance(&ns) {
            server.propose(&tenant_id, Actor::Platform, body).await;
        }
        let spec = json!({
            "risk": "L2", "classification": "confidential", "target": "on-prem",
            "invocation": {
                "endpoint": tool_url,
                "input_schema": {
                    "type": "object",
                    "properties": {"amount": {"type": "integer", "minimum": 0}},
                    "required": ["amount"]
                },
                "timeout_ms": 5000
            }
        });
        let r = admin
            .raw(
                reqwest::Method::PUT,
                &format!("/v1/tenants/{tenant}/tools/erp.post"),
                Some(&spec),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "tool registers: {:?}", r.body);
        let key = TestAgent::new_key();
        let registered: Value = admin
            .post(
                &format!("/v1/tenants/{tenant}/agents"),
                &json!({"id": "bot", "org_unit": "ops", "public_key": key.public().to_base64()}),
            )
            .await
            .expect("agent registers");
        let credential =
            serde_json::from_value(registered["credential"].clone()).expect("a credential");
        GovernedTenant {
            tenant: tenant.into(),
            admin,
            agent: TestAgent { key, credential },
        }
    }

    /// A mission of `bot` with `erp.post`, planned with `steps` small
    /// amounts (policy permits each) and so queued for a worker.
    pub async fn queued_mission(&self, id: &str, steps: usize) {
        let t = &self.tenant;
        let plan: Vec<Value> = (0..steps)
            .map(|i| json!({"tool": "erp.post", "arguments": {"amount": 10 + i}}))
            .collect();
        let m: Value = self
            .admin
            .post(
                &format!("/v1/tenants/{t}/missions"),
                &json!({
                    "id": id, "namespace": "prod", "agent": "bot",
                    "definition": {"objective": "post invoices", "tools": ["erp.post"],
                                   "authority": "L2", "timeout": 3_600_000},
                    "context": {"inputs": {}, "classification": "confidential"},
                    "limits": {"max_steps": 64, "max_tool_calls": 100_000},
                    "plan": plan
                }),
            )
            .await
            .expect("mission created");
        assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");
    }

    /// A queued one-step mission, claimed by the test kit's worker, and an
    /// ExecutionToken for it (`token_request` is the body of the token
    /// request).
    pub async fn running_mission(
        &self,
        server: &super::TestServer,
        id: &str,
        token_request: Value,
    ) -> ExecutionToken {
        let t = &self.tenant;
        self.queued_mission(id, 1).await;
        server.claim(t, id).await;
        self.admin
            .post(
                &format!("/v1/tenants/{t}/missions/{id}/tokens"),
                &token_request,
            )
            .await
            .expect("token issued")
    }

    /// The mission once it is CLOSED (waiting for it to be created, too),
    /// failing the test after 30 s.
    pub async fn closed_mission(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let path = format!("/v1/tenants/{}/missions/{id}", self.tenant);
        loop {
            let m: Value = self.admin.get(&path).await.unwrap_or_default();
            if m["state"] == "CLOSED" {
                return m;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mission {id} not closed in time: {m}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// A call of `erp.post` in `mission`.
    pub fn call(&self, mission: &str, step: u32, arguments: Value) -> ToolCallRequest {
        ToolCallRequest {
            tenant: self.tenant.parse().expect("tenant id"),
            mission: mission.parse().expect("mission id"),
            step,
            call: 0,
            tool: "erp.post".parse().expect("tool name"),
            arguments,
        }
    }
}
