//! Model reasoners against local HTTP servers that speak each wire format
//! (no test needs the internet): the built-in executor asks the model for
//! a plan, records what it asked and what the model answered, and runs
//! the plan; a provider outside the mission's data boundary is never asked;
//! an answer that is not a plan fails the mission with the reason.

use std::sync::{Arc, Mutex};

use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, Raw, TestServer};
use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// What the model server received: headers of interest and the body.
#[derive(Clone, Debug)]
struct Asked {
    path: String,
    authorization: Option<String>,
    api_key: Option<String>,
    version: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct Model {
    asked: Arc<Mutex<Vec<Asked>>>,
    answer: String,
    /// Requests answered 503 before the model answers.
    failures: usize,
}

async fn answer(
    State(m): State<Model>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = uri.path().to_owned();
    let seen = m.asked.lock().unwrap().len();
    m.asked.lock().unwrap().push(Asked {
        path: path.clone(),
        authorization: h("authorization"),
        api_key: h("x-api-key"),
        version: h("anthropic-version"),
        body,
    });
    if seen < m.failures {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "overloaded, try later",
        )
            .into_response();
    }
    axum::Json(if path.ends_with("/chat/completions") {
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": m.answer}}]})
    } else {
        json!({"type": "message", "role": "assistant",
               "content": [{"type": "text", "text": m.answer}]})
    })
    .into_response()
}

/// A local server answering both wire formats with `text`.
async fn model_server(text: &str) -> (String, Arc<Mutex<Vec<Asked>>>) {
    flaky_model_server(text, 0).await
}

/// [`model_server`], but the first `failures` requests get 503.
async fn flaky_model_server(text: &str, failures: usize) -> (String, Arc<Mutex<Vec<Asked>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(answer))
        .route("/v1/messages", axum::routing::post(answer))
        .with_state(Model {
            asked: asked.clone(),
            answer: text.to_owned(),
            failures,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, asked)
}

/// Puts the tenant's secret `name`.
async fn put_secret(g: &GovernedTenant, name: &str, value: &str) {
    let r = g
        .admin
        .raw(
            Method::PUT,
            &format!("/v1/tenants/{}/secrets/{name}", g.tenant),
            Some(&json!({"value": value})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A server whose namespace `prod` plans with `reasoner` (its key, when
/// it names one, is the tenant's secret `model-key`: `test-key`).
async fn server(tool: &RecordingTool, reasoner: Value) -> (TestServer, GovernedTenant) {
    let s = TestServer::start_with_executor(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    put_secret(&g, "model-key", "test-key").await;
    let r = put_reasoner(&g, &reasoner, "*").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (s, g)
}

async fn put_reasoner(g: &GovernedTenant, reasoner: &Value, if_match: &str) -> Raw {
    g.admin
        .raw(
            Method::PUT,
            "/v1/tenants/acme/namespaces/prod/reasoner",
            Some(reasoner),
            &[("if-match", if_match)],
        )
        .await
}

fn provider(api: &str, url: &str, target: &str) -> Value {
    json!({"provider": api, "url": url, "model": "planner-1", "target": target,
           "timeout_ms": 5_000, "api_key_secret": "model-key"})
}

/// A confidential mission for the executor (confidential data may go
/// on-prem only).
async fn run(g: &GovernedTenant, id: &str) -> Value {
    run_in(g, "prod", id).await
}

async fn run_in(g: &GovernedTenant, namespace: &str, id: &str) -> Value {
    let _: Value = g
        .admin
        .post(
            &format!("/v1/tenants/{}/missions", g.tenant),
            &json!({
                "id": id, "namespace": namespace, "agent": "bot",
                "definition": {"objective": "post invoice 7", "tools": ["erp.post"],
                               "authority": "L1", "timeout": 60_000},
                "context": {"inputs": {"invoice": 7}, "classification": "confidential",
                            "labels": {"aura.executor": "builtin"}}
            }),
        )
        .await
        .unwrap();
    g.closed_mission(id).await
}

const PLAN: &str =
    "Sure.\n```json\n{\"steps\": [{\"tool\": \"erp.post\", \"arguments\": {\"amount\": 7}}]}\n```";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_compatible_model_plans_and_the_exchange_is_recorded() {
    let tool = RecordingTool::start().await;
    let (url, asked) = model_server(PLAN).await;
    let base = format!("{url}/v1");
    let (_s, g) = server(&tool, provider("openai-compatible", &base, "on-prem")).await;
    let m = run(&g, "oa").await;
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    // The model's plan ran: the tool got its arguments.
    assert_eq!(tool.calls()[0].body["arguments"], json!({"amount": 7}));

    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path, "/v1/chat/completions");
    assert_eq!(asked[0].authorization.as_deref(), Some("Bearer test-key"));
    assert_eq!(asked[0].body["model"], "planner-1");
    assert_eq!(asked[0].body["messages"][0]["role"], "system");
    assert!(
        asked[0].body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("post invoice 7")
    );

    let exchange = &m["state_data"]["entries"]["reasoner.plan"];
    assert_eq!(exchange["provider"], "openai-compatible", "{exchange}");
    assert_eq!(exchange["model"], "planner-1");
    assert_eq!(exchange["target"], "on-prem");
    assert_eq!(exchange["input"], asked[0].body, "the request as sent");
    assert_eq!(exchange["answer"], PLAN);
    assert!(
        !exchange.to_string().contains("test-key"),
        "the key is never recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_model_plans_over_the_messages_api() {
    let tool = RecordingTool::start().await;
    let (url, asked) = model_server(PLAN).await;
    let (_s, g) = server(&tool, provider("anthropic", &url, "on-prem")).await;
    let m = run(&g, "an").await;
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked[0].path, "/v1/messages");
    assert_eq!(asked[0].api_key.as_deref(), Some("test-key"));
    assert_eq!(asked[0].version.as_deref(), Some("2023-06-01"));
    assert!(asked[0].body["system"].as_str().unwrap().contains("JSON"));
    assert_eq!(
        m["state_data"]["entries"]["reasoner.plan"]["provider"],
        "anthropic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outside_the_missions_boundary_is_never_asked() {
    let tool = RecordingTool::start().await;
    let (url, asked) = model_server(PLAN).await;
    let (_s, g) = server(&tool, provider("anthropic", &url, "cloud")).await;
    let m = run(&g, "leak").await;
    let outcome = &m["outcome"]["outcome"];
    assert_eq!(outcome["kind"], "failed", "{m}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(
        reason.contains("confidential data may not go to the reasoner at `cloud`"),
        "{reason}"
    );
    assert!(asked.lock().unwrap().is_empty(), "the model saw the data");
    assert!(tool.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_a_plan_fails_the_mission_with_the_reason() {
    let tool = RecordingTool::start().await;
    let (url, _asked) =
        model_server("{\"steps\": [{\"tool\": \"mail.send\", \"arguments\": {}}]}").await;
    let (_s, g) = server(
        &tool,
        provider("openai-compatible", &format!("{url}/v1"), "on-prem"),
    )
    .await;
    let m = run(&g, "bad").await;
    let reason = m["outcome"]["outcome"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("`mail.send` is not one of the mission's tools"),
        "{reason}"
    );
    assert!(tool.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_namespace_plans_with_its_own_reasoner() {
    let tool = RecordingTool::start().await;
    let (url, asked) = model_server(PLAN).await;
    let (s, g) = server(
        &tool,
        provider("openai-compatible", &format!("{url}/v1"), "on-prem"),
    )
    .await;
    // A second namespace, governed alike, left at the default.
    g.admin.create_namespace("acme", "lab").await.unwrap();
    let tenant = aura_engine::ids::TenantId::new("acme").unwrap();
    let lab = aura_engine::ids::NamespaceId::new("lab").unwrap();
    for body in aura_engine::sim::namespace_governance(&lab) {
        // The tenant's tools stay as registered.
        if !matches!(body, aura_engine::machine::CommandBody::RegisterTool { .. }) {
            s.propose(&tenant, aura_engine::Actor::Platform, body).await;
        }
    }
    let scripted = run_in(&g, "lab", "in-lab").await;
    assert_eq!(
        scripted["state_data"]["entries"]["reasoner.plan"]["provider"],
        "scripted"
    );
    assert!(
        asked.lock().unwrap().is_empty(),
        "lab's missions stay local"
    );

    let modelled = run(&g, "in-prod").await;
    assert_eq!(
        modelled["state_data"]["entries"]["reasoner.plan"]["provider"],
        "openai-compatible"
    );
    assert_eq!(asked.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoner_configuration_is_versioned_validated_and_audited() {
    let tool = RecordingTool::start().await;
    let s = TestServer::start_with_executor(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    let path = "/v1/tenants/acme/namespaces/prod/reasoner";
    let r = g.admin.raw(Method::GET, path, None, &[]).await;
    assert_eq!(r.body, json!({"provider": "scripted"}));
    let etag = r.headers["etag"].to_str().unwrap().to_owned();

    // Bad settings: a problem naming the reason, and nothing changes.
    let mut bad = provider("anthropic", "https://api.anthropic.com", "cloud");
    bad["api_key_secret"] = json!("../../etc/shadow");
    let r = put_reasoner(&g, &bad, &etag).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("api_key_secret"),
        "{}",
        r.body
    );
    let r = put_reasoner(&g, &json!({"provider": "gpt"}), &etag).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = g.admin.raw(Method::GET, path, None, &[]).await;
    assert_eq!(r.body, json!({"provider": "scripted"}));
    assert_eq!(r.headers["etag"].to_str().unwrap(), etag);

    // A good change under the ETag read; the old ETag is then stale.
    let good = provider("anthropic", "https://api.anthropic.com", "cloud");
    let r = put_reasoner(&g, &good, &etag).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["model"], "planner-1");
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    let r = put_reasoner(&g, &json!({"provider": "scripted"}), &etag).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.body);
    // What is wrong with the settings comes first, whatever the version.
    let r = put_reasoner(&g, &bad, &etag).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = g
        .admin
        .raw(
            Method::PUT,
            path,
            Some(&json!({"provider": "scripted"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_REQUIRED, "{}", r.body);

    let audit: Value = g
        .admin
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    let changes: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["kind"] == "namespace.reasoner")
        .collect();
    assert_eq!(changes.len(), 1, "{audit}");
    let mut recorded = good;
    recorded["retry"] = Value::Null;
    assert_eq!(changes[0]["payload"][0]["reasoner"], recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_missing_from_the_tenants_secrets_fails_the_mission_with_the_reason() {
    let tool = RecordingTool::start().await;
    let (url, asked) = model_server(PLAN).await;
    let mut reasoner = provider("anthropic", &url, "on-prem");
    reasoner["api_key_secret"] = json!("not-deployed");
    let (_s, g) = server(&tool, reasoner).await;
    let m = run(&g, "nokey").await;
    let reason = m["outcome"]["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("tenant `acme` has no secret `not-deployed`"),
        "{reason}"
    );
    assert!(asked.lock().unwrap().is_empty());
    assert!(tool.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_does_not_answer_is_asked_again_on_the_retry_policys_schedule() {
    let tool = RecordingTool::start().await;
    let (url, asked) = flaky_model_server(PLAN, 2).await;
    let mut reasoner = provider("openai-compatible", &format!("{url}/v1"), "on-prem");
    reasoner["retry"] = json!({"initial_interval_ms": 300, "maximum_attempts": 3});
    let (_s, g) = server(&tool, reasoner).await;
    let m = run(&g, "flaky").await;
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    assert_eq!(asked.lock().unwrap().len(), 3);
    // The failed attempts are on the record, with the wait between them.
    let attempts = &m["state_data"]["entries"]["reasoner.attempts"];
    assert_eq!(attempts["failed_attempts"], 2, "{attempts}");
    assert!(
        attempts["last_error"].as_str().unwrap().contains("503"),
        "{attempts}"
    );
    let waited = attempts["not_before"].as_i64().unwrap() - attempts["first_at"].as_i64().unwrap();
    assert!(
        waited >= 300 + 600,
        "backoff of 300 ms, then 600 ms: {attempts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_answers_fails_the_mission_once_its_attempts_are_used_up() {
    let tool = RecordingTool::start().await;
    let (url, asked) = flaky_model_server(PLAN, usize::MAX).await;
    let mut reasoner = provider("openai-compatible", &format!("{url}/v1"), "on-prem");
    reasoner["retry"] = json!({"initial_interval_ms": 200, "maximum_attempts": 2});
    let (_s, g) = server(&tool, reasoner).await;
    let m = run(&g, "down").await;
    let reason = m["outcome"]["outcome"]["reason"].as_str().unwrap();
    assert!(reason.contains("did not answer"), "{reason}");
    assert!(reason.contains("all 2 attempts failed"), "{reason}");
    assert_eq!(asked.lock().unwrap().len(), 2);
    assert!(tool.calls().is_empty());
}

/// A model provider behind a name that resolves to loopback, on a node
/// whose egress policy does not open loopback: the model is never asked
/// and the mission fails at once (a refusal is not retried) with the
/// reason on its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_provider_the_egress_policy_refuses_is_never_asked() {
    let (url, asked) = model_server(PLAN).await;
    let mut config = aura_api::testkit::executor_config(4);
    config.gateway.egress = aura_api::egress::EgressPolicy::default();
    let s = TestServer::start_with(Db::Sqlite, config).await;
    let g = GovernedTenant::create(&s, "acme", "https://erp.example/post").await;
    put_secret(&g, "model-key", "test-key").await;
    let base = format!("{}/v1", url.replace("127.0.0.1", "localhost"));
    let r = put_reasoner(&g, &provider("openai-compatible", &base, "on-prem"), "*").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m = run(&g, "refused").await;
    let reason = m["outcome"]["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("`localhost` resolves to") && reason.contains("egress policy"),
        "{reason}"
    );
    assert!(reason.contains("are not retried"), "{reason}");
    assert!(asked.lock().unwrap().is_empty());
    s.stop().await;
}

/// A configuration names only its own tenant's secrets: beta's reasoner,
/// naming the secret acme holds under that name and pointing at beta's
/// own model server, never carries acme's key there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_send_another_tenants_secret_anywhere() {
    let tool = RecordingTool::start().await;
    let (acme_url, acme_asked) = model_server(PLAN).await;
    let (beta_url, beta_asked) = model_server(PLAN).await;
    let s = TestServer::start_with_executor(Db::Sqlite).await;
    let acme = GovernedTenant::create(&s, "acme", &tool.url).await;
    put_secret(&acme, "model-key", "sk-acme-only").await;
    let reasoner = provider("openai-compatible", &format!("{acme_url}/v1"), "on-prem");
    assert_eq!(
        put_reasoner(&acme, &reasoner, "*").await.status,
        StatusCode::OK
    );

    let beta = GovernedTenant::create(&s, "beta", &tool.url).await;
    let stolen = provider("openai-compatible", &format!("{beta_url}/v1"), "on-prem");
    let r = beta
        .admin
        .raw(
            Method::PUT,
            "/v1/tenants/beta/namespaces/prod/reasoner",
            Some(&stolen),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m = run(&beta, "heist").await;
    let reason = m["outcome"]["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("tenant `beta` has no secret `model-key`"),
        "{reason}"
    );
    assert!(
        beta_asked.lock().unwrap().is_empty(),
        "beta's server got nothing"
    );

    // acme's own configuration uses acme's key.
    let m = run(&acme, "own").await;
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    let asked = acme_asked.lock().unwrap().clone();
    assert_eq!(
        asked[0].authorization.as_deref(),
        Some("Bearer sk-acme-only")
    );
    s.stop().await;
}
