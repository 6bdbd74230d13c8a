//! A secret's value, put by a tenant admin and used for a model request,
//! appears in no API response, no log line at debug level and no audit
//! payload: the test captures everything the process logs while a
//! mission is planned with it.

use std::sync::{Arc, Mutex, OnceLock};

use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const VALUE: &str = "sk-proj-9f8e7d6c5b4a-never-shown";

/// Every log line of this test process, at debug level.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        log
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An OpenAI-compatible model on a bare socket: it keeps each request as
/// received (headers included) and answers with a one-step plan.
async fn model() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as much body as Content-Length says.
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).to_string());
                let plan = r#"{"steps": [{"tool": "erp.post", "arguments": {"amount": 7}}]}"#;
                let body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": plan}}]}).to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_value_is_in_no_response_log_line_or_audit_payload() {
    let log = captured();
    let tool = RecordingTool::start().await;
    let (url, asked) = model().await;
    let s = TestServer::start_with_executor(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    let mut responses: Vec<Value> = Vec::new();
    let call = |method: Method, path: &str, body: Option<Value>| {
        let admin = g.admin.clone();
        let path = path.to_owned();
        async move {
            admin
                .raw(method, &path, body.as_ref(), &[("if-match", "*")])
                .await
        }
    };
    let r = call(
        Method::PUT,
        "/v1/tenants/acme/secrets/model-key",
        Some(json!({"value": VALUE})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    responses.push(r.body);
    let reasoner = json!({"provider": "openai-compatible", "url": url, "model": "planner",
                          "target": "on-prem", "timeout_ms": 5000, "api_key_secret": "model-key"});
    let r = call(
        Method::PUT,
        "/v1/tenants/acme/namespaces/prod/reasoner",
        Some(reasoner),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    responses.push(r.body);
    let r = call(
        Method::POST,
        "/v1/tenants/acme/missions",
        Some(json!({
            "id": "planned", "namespace": "prod", "agent": "bot",
            "definition": {"objective": "post invoice 7", "tools": ["erp.post"],
                           "authority": "L1", "timeout": 60_000},
            "context": {"inputs": {"invoice": 7}, "classification": "confidential",
                        "labels": {"aura.executor": "builtin"}}
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = g.closed_mission("planned").await;
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    responses.push(m);
    // The key was used: the model received it.
    let received = asked.lock().unwrap().clone();
    assert!(
        received
            .iter()
            .any(|r| r.to_ascii_lowercase().contains(&format!(
                "authorization: bearer {}",
                VALUE.to_ascii_lowercase()
            ))),
        "{received:?}"
    );
    for path in [
        "/v1/tenants/acme/secrets",
        "/v1/tenants/acme/audit/entries?limit=1000",
        "/v1/tenants/acme/audit/export",
        "/v1/tenants/acme/missions/planned",
        "/v1/tenants/acme/namespaces/prod/reasoner",
    ] {
        let r = call(Method::GET, path, None).await;
        assert!(r.status.is_success(), "{path}: {}", r.body);
        responses.push(r.body);
    }
    for body in &responses {
        assert!(
            !body.to_string().contains(VALUE),
            "a response holds it: {body}"
        );
    }
    let audit = responses[4].to_string();
    assert!(audit.contains("secret_put"), "the put is on the record");
    s.stop().await;
    let lines = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    assert!(lines.contains("planned"), "the log was captured");
    assert!(!lines.contains(VALUE), "a log line holds the value");
}
