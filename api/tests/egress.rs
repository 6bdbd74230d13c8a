//! The egress policy on a real server: a tenant admin cannot point a tool
//! or a model provider at the node itself, at cloud metadata or at a
//! private network the operator has not opened. Literal addresses are
//! refused at registration; names are resolved and judged at each call,
//! and the refusal is on the mission's record.

use aura_api::ApiConfig;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Client, Db, Raw, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn spec(endpoint: &str) -> Value {
    json!({
        "risk": "L1", "classification": "internal", "target": "on-prem",
        "invocation": {"endpoint": endpoint, "input_schema": {"type": "object"}, "timeout_ms": 2000}
    })
}

async fn register(admin: &Client, name: &str, spec: &Value) -> Raw {
    admin
        .raw(
            Method::PUT,
            &format!("/v1/tenants/acme/tools/{name}"),
            Some(spec),
            &[],
        )
        .await
}

fn refused_at(r: &Raw, pointer: &str) -> String {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let errors = r.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body));
    let e = errors
        .iter()
        .find(|e| e["pointer"] == pointer)
        .unwrap_or_else(|| panic!("no error at {pointer}: {}", r.body));
    e["detail"].as_str().unwrap().to_owned()
}

/// `bot` calls `erp.post` in a running mission, through the gateway.
async fn call_tool(s: &TestServer, g: &GovernedTenant) -> Raw {
    let token = g.running_mission(s, "m1", json!({})).await;
    let envelope = g.agent.sign(&token, g.call("m1", 0, json!({"amount": 5})));
    s.anonymous()
        .raw(
            Method::POST,
            "/v1/gateway/tool-calls",
            Some(&serde_json::to_value(&envelope).unwrap()),
            &[],
        )
        .await
}

async fn audit(c: &Client) -> Vec<Value> {
    let r: Value = c
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    r["entries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_reserved_addresses_are_refused_at_registration() {
    let s = TestServer::start_with(Db::Sqlite, ApiConfig::default()).await;
    let admin = s.tenant_admin("acme").await;
    let cluster = s.node.local_addr();
    let api = s.base.trim_start_matches("http://").to_owned();
    for (endpoint, class) in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://[::1]:5432/", "loopback"),
        ("http://10.0.0.7/post", "private"),
        ("http://[::ffff:192.168.1.1]/", "private"),
        ("http://0.0.0.0:80/", "unspecified"),
        (&format!("http://{cluster}/raft"), "own listener"),
        (&format!("http://{api}/v1/tenants"), "own listener"),
    ] {
        let r = register(&admin, "erp.post", &spec(endpoint)).await;
        let detail = refused_at(&r, "/invocation/endpoint");
        let expected = if class == "own listener" {
            "this node's own listeners".to_owned()
        } else {
            format!("a {class} address")
        };
        assert!(detail.contains(&expected), "{endpoint}: {detail}");
    }
    // A URL no call could be made to is refused too, naming the field.
    for endpoint in ["http://[zz/post", "https://:443/x", "http://[::1/"] {
        let r = register(&admin, "erp.post", &spec(endpoint)).await;
        let detail = refused_at(&r, "/invocation/endpoint");
        assert!(detail.contains("URL with a host"), "{endpoint}: {detail}");
    }
    // A compensation or a placement is an endpoint too.
    let mut spec = spec("https://erp.example/post");
    spec["invocation"]["compensation_endpoint"] = json!("http://169.254.169.254/");
    spec["invocation"]["placements"] =
        json!([{"target": "region:eu", "endpoint": "http://172.16.0.1/post"}]);
    let r = register(&admin, "erp.post", &spec).await;
    refused_at(&r, "/invocation/compensation_endpoint");
    refused_at(&r, "/invocation/placements/0/endpoint");
    // Nothing was registered.
    let r = admin
        .raw(Method::GET, "/v1/tenants/acme/tools/erp.post", None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Nor can a model provider sit at such an address.
    admin.create_namespace("acme", "prod").await.unwrap();
    let r = admin
        .raw(
            Method::PUT,
            "/v1/tenants/acme/namespaces/prod/reasoner",
            Some(
                &json!({"provider": "openai-compatible", "url": "http://169.254.169.254/v1",
                          "model": "m", "target": "on-prem", "timeout_ms": 5000}),
            ),
            &[("if-match", "*")],
        )
        .await;
    refused_at(&r, "/url");
    s.stop().await;
}

/// `localhost` is a name: it passes registration, and every call to it is
/// refused once it resolves to loopback, recorded as the call's failure,
/// and never reaches the listener there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_is_refused_at_call_time_and_audited() {
    let tool = RecordingTool::start().await;
    let named = tool.url.replace("127.0.0.1", "localhost");
    let s = TestServer::start_with(Db::Sqlite, ApiConfig::default()).await;
    let g = GovernedTenant::create(&s, "acme", &named).await;
    let r = call_tool(&s, &g).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(r.body["code"], "egress_refused", "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("`localhost` resolves to") && detail.contains("loopback"),
        "{detail}"
    );
    assert!(tool.calls().is_empty(), "the tool was never reached");
    // Not retried: the same destination would be refused again.
    assert_eq!(r.body["retry"]["retry"], "exhausted", "{}", r.body);

    let completed: Vec<Value> = audit(&g.admin)
        .await
        .into_iter()
        .filter(|e| e["entry"]["kind"] == "tool_call.complete")
        .collect();
    assert_eq!(completed.len(), 1);
    let result = &completed[0]["payload"][0]["result"];
    assert_eq!(result["failure"], "egress_refused", "{result}");
    s.stop().await;
}

/// What the operator allows is reachable; the node's own listeners stay
/// out of reach even inside an allowed block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_block_is_reachable_but_never_the_nodes_own_listeners() {
    let tool = RecordingTool::start().await;
    let mut config = ApiConfig::default();
    config.gateway.egress = aura_api::egress::EgressPolicy::new(["127.0.0.0/8".parse().unwrap()]);
    let s = TestServer::start_with(Db::Sqlite, config).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url.replace("127.0.0.1", "localhost")).await;
    let r = call_tool(&s, &g).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(tool.calls().len(), 1);

    let cluster = s.node.local_addr();
    let r = register(&g.admin, "raft.poke", &spec(&format!("http://{cluster}/"))).await;
    assert!(refused_at(&r, "/invocation/endpoint").contains("own listeners"));
    s.stop().await;
}
