//! Calling a tool over HTTP(S): one POST per dispatch with the call's
//! idempotency key, a deadline from the tool's registration, no redirects
//! followed, and a cap on how much of the answer is read.

use std::sync::Arc;
use std::time::Duration;

use aura_engine::mission::{CallFailure, CallResult};
use aura_raft::network::error_chain;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::egress::EgressPolicy;
use crate::egress::connector::{EgressConnector, refusal};
use serde::Serialize;
use serde_json::Value;

/// The most of a tool's answer the gateway reads: what the engine records.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
const ERROR_BODY_CHARS: usize = 500;

/// What the tool receives as its JSON body.
#[derive(Debug, Serialize)]
pub struct ToolRequestBody<'a> {
    pub tenant: &'a str,
    pub mission: &'a str,
    pub step: u32,
    pub call: u32,
    pub tool: &'a str,
    pub idempotency_key: &'a str,
    pub arguments: &'a Value,
}

/// What a compensation endpoint receives as its JSON body: the call being
/// undone (its key and output), under the compensation's own key.
#[derive(Debug, Serialize)]
pub struct CompensationRequestBody<'a> {
    pub tenant: &'a str,
    pub mission: &'a str,
    pub step: u32,
    pub tool: &'a str,
    pub idempotency_key: &'a str,
    /// The idempotency key of the call to undo.
    pub compensates: &'a str,
    /// What that call returned.
    pub output: &'a Value,
}

/// A body the gateway POSTs, with the headers that go with it (besides
/// `Content-Type`).
pub trait Outbound: Serialize {
    fn headers(&self) -> Vec<(&'static str, String)>;
}

fn aura_headers(key: &str, tenant: &str, mission: &str) -> Vec<(&'static str, String)> {
    vec![
        ("idempotency-key", key.to_owned()),
        ("aura-tenant", tenant.to_owned()),
        ("aura-mission", mission.to_owned()),
    ]
}

impl Outbound for ToolRequestBody<'_> {
    fn headers(&self) -> Vec<(&'static str, String)> {
        aura_headers(self.idempotency_key, self.tenant, self.mission)
    }
}

impl Outbound for CompensationRequestBody<'_> {
    fn headers(&self) -> Vec<(&'static str, String)> {
        aura_headers(self.idempotency_key, self.tenant, self.mission)
    }
}

/// Any JSON request with its own headers (a model provider's, say).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct JsonRequest {
    pub body: Value,
    #[serde(skip)]
    pub headers: Vec<(&'static str, String)>,
}

impl Outbound for JsonRequest {
    fn headers(&self) -> Vec<(&'static str, String)> {
        self.headers.clone()
    }
}

/// The one HTTP client for calls made on a tenant's behalf: tools,
/// compensations and model providers. Every connection it makes passes
/// the egress policy.
#[derive(Clone)]
pub struct ToolClient {
    http: Client<HttpsConnector<EgressConnector>, Full<Bytes>>,
    egress: Arc<EgressPolicy>,
}

impl std::fmt::Debug for ToolClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToolClient")
    }
}

impl ToolClient {
    pub fn new(egress: EgressPolicy) -> Result<ToolClient, String> {
        let egress = Arc::new(egress);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // The system's trust store (private CAs of on-prem tools); Mozilla's
        // roots where the system has none.
        let tls = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system CA certificates; using Mozilla's roots for tool calls");
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(provider)
                    .map_err(|e| format!("TLS for tool calls cannot start: {e}"))?
            }
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        let tcp = EgressConnector::new(http, egress.clone());
        let https = tls.https_or_http().enable_http1().wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(ToolClient {
            http: client,
            egress,
        })
    }

    /// The policy its connections pass, for checks made before any call
    /// (a tool's registration, say).
    pub fn egress(&self) -> &EgressPolicy {
        &self.egress
    }

    /// Calls the tool; every way it can go wrong becomes a `Failed` result
    /// (which the engine records like a success).
    pub async fn call(&self, endpoint: &str, timeout_ms: u64, body: &impl Outbound) -> CallResult {
        let deadline = Duration::from_millis(timeout_ms);
        match tokio::time::timeout(deadline, self.exchange(endpoint, body)).await {
            Ok(result) => result,
            Err(_) => failed(
                CallFailure::Timeout,
                None,
                &format!("no answer within {timeout_ms} ms"),
            ),
        }
    }

    async fn exchange(&self, endpoint: &str, body: &impl Outbound) -> CallResult {
        let json = match serde_json::to_vec(body) {
            Ok(j) => j,
            Err(e) => return failed(CallFailure::InvalidResponse, None, &e.to_string()),
        };
        let mut request = hyper::Request::post(endpoint).header(CONTENT_TYPE, "application/json");
        for (name, value) in body.headers() {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(json)));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                return failed(
                    CallFailure::Unreachable,
                    None,
                    &format!("the endpoint is not a usable URL: {e}"),
                );
            }
        };
        let response = match self.http.request(request).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(refused) = refusal(&e) {
                    tracing::warn!(%endpoint, %refused, "egress refused");
                    return failed(CallFailure::EgressRefused, None, &refused.to_string());
                }
                return failed(CallFailure::Unreachable, None, &error_chain(&e));
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return failed(
                CallFailure::InvalidResponse,
                Some(status.as_u16()),
                "the tool answered with a redirect; the gateway follows none",
            );
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return too_large(status.as_u16());
        }
        let mut incoming = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = incoming.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(chunk) = frame.data_ref() {
                        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                            return too_large(status.as_u16());
                        }
                        bytes.extend_from_slice(chunk);
                    }
                }
                Err(e) => return failed(CallFailure::Unreachable, None, &error_chain(&e)),
            }
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let text: String = text.chars().take(ERROR_BODY_CHARS).collect();
            return failed(
                CallFailure::HttpStatus,
                Some(status.as_u16()),
                &format!("the tool answered {status}: {}", text.trim()),
            );
        }
        let output = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    return failed(
                        CallFailure::InvalidResponse,
                        Some(status.as_u16()),
                        &format!("the tool's answer is not JSON: {e}"),
                    );
                }
            }
        };
        CallResult::Succeeded {
            status: status.as_u16(),
            output,
        }
    }
}

fn failed(failure: CallFailure, status: Option<u16>, message: &str) -> CallResult {
    CallResult::Failed {
        failure,
        status,
        message: message.to_owned(),
    }
}

fn too_large(status: u16) -> CallResult {
    failed(
        CallFailure::ResponseTooLarge,
        Some(status),
        &format!("the tool's answer is larger than {MAX_RESPONSE_BYTES} bytes"),
    )
}
