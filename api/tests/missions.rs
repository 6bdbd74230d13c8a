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

/// A plan the engine refuses leaves the mission created, planning, and
/// the problem names it: with a server-chosen id, the problem is the only
/// way to find it. A create refused leaves nothing and names nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_plan_names_the_mission_it_was_for_and_a_refused_create_leaves_nothing() {
    let s = TestServer::start(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", "http://127.0.0.1:9/unused").await;
    let not_an_object = json!([{"tool": "erp.post", "arguments": 5}]);

    let (status, p) = create(&g, &mission(None, "prod", not_an_object.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["code"], "arguments_not_object", "{p}");
    let resource = p["resource"]
        .as_str()
        .unwrap_or_else(|| panic!("the problem names the mission: {p}"));
    let m: Value = g.admin.get(resource).await.unwrap();
    assert_eq!(m["state"], "PLANNING", "{m}");
    assert_eq!(mission_ids(&g).await, [m["id"].as_str().unwrap()]);

    let (status, p) = create(&g, &mission(Some("m2"), "nowhere", not_an_object)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
    assert!(p.get("resource").is_none(), "nothing was made: {p}");
    assert_eq!(mission_ids(&g).await.len(), 1);

    // A plan the engine takes moves the mission on at once.
    let good = json!([{"tool": "erp.post", "arguments": {"amount": 10}}]);
    let (status, m) = create(&g, &mission(Some("m3"), "prod", good.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");

    // Planned later, from CREATED, the same way.
    let mut unplanned = mission(Some("m4"), "prod", Value::Null);
    unplanned.as_object_mut().unwrap().remove("plan");
    let (status, m) = create(&g, &unplanned).await;
    assert_eq!(
        (status, &m["state"]),
        (StatusCode::CREATED, &json!("CREATED"))
    );
    let m: Value = g
        .admin
        .post("/v1/tenants/acme/missions/m4/plan", &json!({"steps": good}))
        .await
        .unwrap();
    assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");
    s.stop().await;
}
