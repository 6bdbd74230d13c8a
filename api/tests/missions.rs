//! Creating a mission with its plan.

use aura_api::testkit::agent::GovernedTenant;
use aura_api::testkit::{Db, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn mission(id: Option<&str>, namespace: &str, plan: Value) -> Value {
    let mut m = json!({
        "namespace": namespace, "agent": "bot",
        "definition": {"objective": "post invoices", "tools": ["erp.post"],
                       "authority": "L2", "timeout": 3_600_000},
        "context": {"inputs": {}, "classification": "confidential"},
        "plan": plan
    });
    if let Some(id) = id {
        m["id"] = json!(id);
    }
    m
}

async fn create(g: &GovernedTenant, body: &Value) -> (StatusCode, Value) {
    let r = g
        .admin
        .raw(
            reqwest::Method::POST,
            "/v1/tenants/acme/missions",
            Some(body),
            &[],
        )
        .await;
    (r.status, r.body)
}

async fn mission_ids(g: &GovernedTenant) -> Vec<String> {
    let page: Value = g.admin.get("/v1/tenants/acme/missions").await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Bad input changes nothing: a plan the engine would refuse is refused
/// before the mission is created, or, for a mission created without
/// one, before it starts planning; a refused create leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_the_engine_would_refuse_creates_nothing_and_moves_nothing() {
    let s = TestServer::start(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", "http://127.0.0.1:9/unused").await;
    let not_an_object = json!([{"tool": "erp.post", "arguments": 5}]);
    let outside = json!([{"tool": "erp.delete", "arguments": {}}]);

    let (status, p) = create(&g, &mission(None, "prod", not_an_object.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["code"], "arguments_not_object", "{p}");
    assert!(p.get("resource").is_none(), "nothing was made: {p}");
    let (status, p) = create(&g, &mission(Some("m1"), "prod", outside.clone())).await;
    assert_eq!(p["code"], "tool_outside_boundary", "{status}: {p}");
    let (status, p) = create(&g, &mission(Some("m2"), "nowhere", json!([]))).await;
    assert_eq!(p["code"], "plan_size", "{status}: {p}");
    let (status, p) = create(
        &g,
        &mission(
            Some("m2"),
            "nowhere",
            json!([{"tool": "erp.post", "arguments": {}}]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
    assert!(p.get("resource").is_none(), "nothing was made: {p}");
    assert!(mission_ids(&g).await.is_empty());

    // A plan the engine takes moves the mission on at once.
    let good = json!([{"tool": "erp.post", "arguments": {"amount": 10}}]);
    let (status, m) = create(&g, &mission(Some("m3"), "prod", good.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");

    // Planned later, from CREATED: a bad plan leaves it CREATED.
    let mut unplanned = mission(Some("m4"), "prod", Value::Null);
    unplanned.as_object_mut().unwrap().remove("plan");
    let (status, m) = create(&g, &unplanned).await;
    assert_eq!(
        (status, &m["state"]),
        (StatusCode::CREATED, &json!("CREATED"))
    );
    for bad in [not_an_object, outside] {
        let r = g
            .admin
            .raw(
                reqwest::Method::POST,
                "/v1/tenants/acme/missions/m4/plan",
                Some(&json!({"steps": bad})),
                &[],
            )
            .await;
        assert!(r.status.is_client_error(), "{:?}", r.body);
        let m: Value = g.admin.get("/v1/tenants/acme/missions/m4").await.unwrap();
        assert_eq!(m["state"], "CREATED", "{m}");
    }
    let m: Value = g
        .admin
        .post("/v1/tenants/acme/missions/m4/plan", &json!({"steps": good}))
        .await
        .unwrap();
    assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");
    assert_eq!(mission_ids(&g).await, ["m3", "m4"]);
    s.stop().await;
}
