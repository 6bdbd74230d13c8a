//! The HTTP server as a client sees it: health, readiness, metrics,
//! problem details for every error, request ids, security headers, CORS
//! only when configured, and the OpenAPI document.

use aura_api::{ApiConfig, AppState};
use aura_raft::Node;
use reqwest::StatusCode;
use serde_json::Value;

struct Server {
    base: String,
    http: reqwest::Client,
    _node: Node,
    _dir: tempfile::TempDir,
}

async fn store(dir: &tempfile::TempDir) -> aura_api::store::Store {
    aura_api::store::Store::open(&aura_api::store::Store::sqlite_url(dir.path()))
        .await
        .unwrap()
}

async fn start(config: ApiConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let node = aura_raft::testkit::single_node(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(aura_api::serve(
        listener,
        AppState::connect(node.clone(), store(&dir).await, config)
            .await
            .unwrap(),
        std::future::pending(),
    ));
    Server {
        base,
        http: reqwest::Client::new(),
        _node: node,
        _dir: dir,
    }
}

impl Server {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn get_from(&self, path: &str, origin: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("origin", origin)
            .send()
            .await
            .unwrap()
    }
}

async fn problem(resp: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:aura:problem:{kind}"), "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(body["instance"], id, "the problem names the request id");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let s = start(ApiConfig::default()).await;
    let r = s.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");

    let r = s.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["leader"], 1);

    let _ = s.get("/nowhere/abc").await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for want in [
        "aura_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
        "aura_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "aura_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 1",
        "aura_raft_is_leader 1",
        "aura_missions{state=\"CREATED\"} 0",
        "aura_policy_decisions_total{outcome=\"deny\"} 0",
        "aura_engine_commits_total ",
        "aura_engine_commands_total ",
        "aura_raft_snapshot_cpu_seconds_total ",
    ] {
        assert!(text.contains(want), "metrics lack `{want}`:\n{text}");
    }
    // The node has applied and logged its bootstrap entries, at some cost.
    for spent in [
        "aura_engine_apply_cpu_seconds_total",
        "aura_raft_log_cpu_seconds_total",
    ] {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(spent)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("metrics lack `{spent}`:\n{text}"));
        let seconds: f64 = value.parse().expect("seconds");
        assert!(seconds > 0.0, "{spent} is {value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_leader_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    // Joining a cluster that does not answer: never a leader.
    let node = Node::start(aura_raft::testkit::node_config(
        2,
        dir.path(),
        &aura_raft::ClusterSecret::random(),
        aura_raft::Bootstrap::Join("127.0.0.1:1".into()),
        0,
    ))
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(aura_api::serve(
        listener,
        AppState::connect(node.clone(), store(&dir).await, ApiConfig::default())
            .await
            .unwrap(),
        std::future::pending(),
    ));
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "not-ready").await;
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "alive even when not ready");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_problem_json_with_the_request_id() {
    let s = start(ApiConfig {
        body_limit: 1024,
        ..ApiConfig::default()
    })
    .await;
    let body = problem(
        s.get("/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/nothing-here")
    );

    let r = s
        .http
        .delete(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;

    let r = s
        .http
        .post(format!("{}/healthz", s.base))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;

    // A caller's request id is kept and echoed.
    let r = s
        .http
        .get(format!("{}/missing", s.base))
        .header("x-request-id", "caller-chosen-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "caller-chosen-1");
    let body = problem(r, StatusCode::NOT_FOUND, "not-found").await;
    assert_eq!(body["instance"], "caller-chosen-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_cors_only_when_configured() {
    let s = start(ApiConfig::default()).await;
    let r = s.get_from("/healthz", "https://console.example").await;
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.get("x-request-id").is_some());
    assert!(
        h.get("access-control-allow-origin").is_none(),
        "CORS must be off by default"
    );

    let s = start(ApiConfig {
        cors_origins: vec!["https://console.example".parse().unwrap()],
        ..ApiConfig::default()
    })
    .await;
    let r = s.get_from("/healthz", "https://console.example").await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://console.example"
    );
    let r = s.get_from("/healthz", "https://evil.example").await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_the_checked_in_one_and_docs_are_embedded() {
    let s = start(ApiConfig::default()).await;
    let served: Value = s.get("/openapi.json").await.json().await.unwrap();
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, checked_in,
        "the served document differs from openapi/openapi.json"
    );
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    let r = s.get("/docs/").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
}

/// With `private_metrics_and_docs`, the metrics and the API's document
/// answer a platform key only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_docs_can_be_kept_to_platform_keys() {
    let config = aura_api::ApiConfig {
        private_metrics_and_docs: true,
        ..aura_api::testkit::api_config()
    };
    let s = aura_api::testkit::TestServer::start_with(aura_api::testkit::Db::Sqlite, config).await;
    let tenant_admin = s.tenant_admin("acme").await;
    for path in ["/metrics", "/openapi.json", "/docs/"] {
        let anonymous = s
            .anonymous()
            .raw(reqwest::Method::GET, path, None, &[])
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
        let tenant = tenant_admin
            .raw(reqwest::Method::GET, path, None, &[])
            .await;
        assert_eq!(tenant.status, StatusCode::FORBIDDEN, "{path}");
        let platform = s
            .platform()
            .raw(reqwest::Method::GET, path, None, &[])
            .await;
        assert_eq!(platform.status, StatusCode::OK, "{path}");
    }
    // Health and readiness stay open for load balancers.
    let ready = s
        .anonymous()
        .raw(reqwest::Method::GET, "/readyz", None, &[])
        .await;
    assert_eq!(ready.status, StatusCode::OK);
    s.stop().await;
}
