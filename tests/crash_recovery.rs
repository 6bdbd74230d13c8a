//! Crash recovery of the durable runtime, with a real process and a real
//! SIGKILL: 100 missions run by the built-in executor of one `aura serve`,
//! which is killed at random points several times and restarted on the
//! same data directory. At the end every mission is CLOSED (succeeded, or
//! failed with its completed steps compensated), every recorded step
//! output is what the tool answered under that call's idempotency key, no
//! key was carried out twice with different outcomes, and every mission
//! rebuilds from the audit export with `aura mission replay`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aura_api::testkit::Client;
use aura_api::testkit::agent::RecordingTool;
use aura_engine::identity::KeyPair;
use aura_raft::testkit::free_port;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const MISSIONS: u64 = 100;
const KILLS: usize = 5;

struct Server {
    child: Option<Child>,
    port: u16,
    cluster_port: u16,
}

impl Server {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self, dir: &Path) {
        let child = Command::new(env!("CARGO_BIN_EXE_aura"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--cluster-listen")
            .arg(format!("127.0.0.1:{}", self.cluster_port))
            .args(["--executor-concurrency", "4", "--executor-lease-ms", "2000"])
            // The test's tools listen on loopback.
            .args(["--egress-allow", "127.0.0.1"])
            .env("AURA_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aura serve starts");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no flush beyond what was already durable.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reaped");
        }
    }

    async fn ready(&self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = http
                .get(format!("{}/readyz", self.base()))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "aura serve never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tool that carries each idempotency key out once: a repeated key gets
/// the first answer back. `effects` counts how often each key was carried
/// out, and what it answered.
#[derive(Clone, Default)]
struct Ledger {
    effects: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
}

impl Ledger {
    async fn tool(&self, name: &'static str, fail_when: fn(&Value) -> bool) -> RecordingTool {
        let effects = self.effects.clone();
        RecordingTool::start_with(move |call| {
            let effects = effects.clone();
            async move {
                // Slow enough that the kills land while missions run.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if fail_when(&call.body) {
                    return (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({"error": "refused"}),
                    );
                }
                let mut e = effects.lock().unwrap();
                let answers = e.entry(call.idempotency_key.clone()).or_default();
                if let Some(first) = answers.first() {
                    return (StatusCode::OK, first.clone());
                }
                let answer = json!({"tool": name, "amount": call.body["arguments"]["amount"],
                                    "key": call.idempotency_key});
                answers.push(answer.clone());
                (StatusCode::OK, answer)
            }
        })
        .await
    }
}

fn never(_: &Value) -> bool {
    false
}

/// Every tenth mission's last step is refused, so it fails for good and
/// its first two steps are compensated.
fn tenth(body: &Value) -> bool {
    body["arguments"]["amount"]
        .as_u64()
        .is_some_and(|a| a.is_multiple_of(10))
}

/// PUT `path` with the ETag of what GET `read` shows.
async fn put_config(c: &Client, read: &str, path: &str, body: Value) {
    let current = c.raw(Method::GET, read, None, &[]).await;
    let etag = current.headers["etag"].to_str().unwrap().to_owned();
    let r = c
        .raw(Method::PUT, path, Some(&body), &[("if-match", &etag)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
}

async fn register(admin: &Client, name: &str, endpoint: &str, extra: Value) {
    let mut invocation = json!({"endpoint": endpoint, "input_schema": {"type": "object"},
                                "timeout_ms": 5000});
    for (k, v) in extra.as_object().unwrap() {
        invocation[k] = v.clone();
    }
    let spec = json!({"risk": "L1", "classification": "internal", "target": "on-prem",
                      "invocation": invocation});
    let r = admin
        .raw(
            Method::PUT,
            &format!("/v1/tenants/acme/tools/{name}"),
            Some(&spec),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
}

/// The tenant, namespace, policy, routing, tools and agent, over the API.
async fn set_up(base: &str, dir: &Path, ledger: &Ledger, undo: &RecordingTool) -> Client {
    let platform_key = std::fs::read_to_string(dir.join("bootstrap-admin.key")).unwrap();
    let platform = Client::connect(base, platform_key.trim());
    let created = platform.create_tenant("acme").await.unwrap();
    let admin = Client::connect(base, &created.admin_key.key);
    admin.create_namespace("acme", "prod").await.unwrap();
    let bundle: Value = admin
        .post(
            "/v1/tenants/acme/policy-bundles",
            &json!({"policies": aura_engine::sim::SIM_BUNDLE}),
        )
        .await
        .unwrap();
    put_config(
        &admin,
        "/v1/tenants/acme/namespaces/prod/policy",
        "/v1/tenants/acme/namespaces/prod/policy/stable",
        json!({"version": bundle["version"]}),
    )
    .await;
    put_config(
        &admin,
        "/v1/tenants/acme/namespaces/prod/routing",
        "/v1/tenants/acme/namespaces/prod/routing",
        json!({"internal": ["on-prem"]}),
    )
    .await;
    let undoable = json!({"compensation_endpoint": undo.url,
                          "retry": {"initial_interval_ms": 50, "maximum_attempts": 20}});
    let reserve = ledger.tool("erp.reserve", never).await;
    let book = ledger.tool("erp.book", never).await;
    let close = ledger.tool("erp.close", tenth).await;
    register(&admin, "erp.reserve", &reserve.url, undoable.clone()).await;
    register(&admin, "erp.book", &book.url, undoable).await;
    register(
        &admin,
        "erp.close",
        &close.url,
        json!({"retry": {"non_retryable": ["http_status"]}}),
    )
    .await;
    let key = KeyPair::from_seed([9; 32]).public().to_base64();
    let _: Value = admin
        .post(
            "/v1/tenants/acme/agents",
            &json!({"id": "bot", "org_unit": "ops", "public_key": key}),
        )
        .await
        .unwrap();
    admin
}

/// A tiny deterministic generator for the kill points, seeded per run and
/// printed, so a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

async fn missions(admin: &Client) -> Vec<Value> {
    let mut all = Vec::new();
    for i in 0..MISSIONS {
        let m: Value = admin
            .get(&format!("/v1/tenants/acme/missions/m{i}"))
            .await
            .unwrap();
        all.push(m);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missions_survive_repeated_sigkills_and_no_effect_happens_twice() {
    let seed = std::env::var("AURA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill points from AURA_CRASH_SEED={seed}");
    let mut rng = Lcg(seed);

    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::default();
    let undo = RecordingTool::start().await;
    let mut server = Server {
        child: None,
        port: free_port(),
        cluster_port: free_port(),
    };
    server.start(dir.path());
    server.ready().await;
    let base = server.base();
    let admin = set_up(&base, dir.path(), &ledger, &undo).await;

    for i in 0..MISSIONS {
        let body = json!({
            "id": format!("m{i}"), "namespace": "prod", "agent": "bot",
            "definition": {"objective": "reserve, book and close", "authority": "L1",
                           "tools": ["erp.reserve", "erp.book", "erp.close"],
                           "timeout": 600_000},
            "context": {"inputs": {"amount": i}, "classification": "internal",
                        "labels": {"aura.executor": "builtin"}}
        });
        let _: Value = admin
            .post("/v1/tenants/acme/missions", &body)
            .await
            .unwrap();
    }

    let mut open_at_kill = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(700))).await;
        let open = missions(&admin)
            .await
            .iter()
            .filter(|m| m["state"] != "CLOSED")
            .count();
        open_at_kill.push(open);
        server.kill();
        // What the killed server acknowledged, the restarted one finishes.
        server.start(dir.path());
        server.ready().await;
    }
    eprintln!("missions open at each kill: {open_at_kill:?}");
    assert!(
        open_at_kill.iter().filter(|n| **n > 0).count() >= 3,
        "most kills must land while missions run: {open_at_kill:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    let all = loop {
        let all = missions(&admin).await;
        if all.iter().all(|m| m["state"] == "CLOSED") {
            break all;
        }
        let open: Vec<_> = all
            .iter()
            .filter(|m| m["state"] != "CLOSED")
            .map(|m| format!("{} {}", m["id"], m["state"]))
            .collect();
        assert!(Instant::now() < deadline, "missions still open: {open:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let effects = ledger.effects.lock().unwrap().clone();
    for (key, answers) in &effects {
        assert_eq!(answers.len(), 1, "key {key} was carried out twice");
    }
    let undone: BTreeSet<String> = undo
        .calls()
        .iter()
        .map(|c| c.body["compensates"].as_str().unwrap().to_owned())
        .collect();
    let mut failed = 0;
    for m in &all {
        let i: u64 = m["id"].as_str().unwrap()[1..].parse().unwrap();
        let outcome = &m["outcome"]["outcome"];
        // Every recorded output is the tool's one answer to that key.
        for step in 0..3 {
            let record = &m["tool_calls"][step.to_string()]["0"];
            if record["result"]["outcome"] != "succeeded" {
                continue;
            }
            let key = record["idempotency_key"].as_str().unwrap();
            assert_eq!(
                Some(&record["result"]["output"]),
                effects.get(key).map(|a| &a[0]),
                "mission m{i} step {step}"
            );
        }
        if i.is_multiple_of(10) {
            failed += 1;
            assert_eq!(outcome["kind"], "failed", "m{i}: {outcome}");
            assert_eq!(outcome["result"]["compensated"], json!([1, 0]), "m{i}");
            for step in ["0", "1"] {
                let key = m["tool_calls"][step]["0"]["idempotency_key"]
                    .as_str()
                    .unwrap();
                assert!(undone.contains(key), "m{i} step {step} was not undone");
            }
        } else {
            assert_eq!(outcome["kind"], "succeeded", "m{i}: {outcome}");
            assert_eq!(outcome["result"]["steps"].as_array().unwrap().len(), 3);
        }
    }
    assert_eq!(failed, MISSIONS / 10);
    // Three effects per mission but the failed ones' last step: nothing
    // more, nothing less.
    assert_eq!(effects.len() as u64, 3 * MISSIONS - MISSIONS / 10);

    // Across the kills nothing the missions did escaped the audit record:
    // every mission rebuilds from the tenant's export to its live digest.
    let export = admin
        .raw(Method::GET, "/v1/tenants/acme/audit/export", None, &[])
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let file = dir.path().join("acme.jsonl");
    std::fs::write(&file, export.body.as_str().unwrap()).unwrap();
    for m in &all {
        let id = m["id"].as_str().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_aura"))
            .args(["mission", "replay", id, "--export"])
            .arg(&file)
            .args(["--digest", m["digest"].as_str().unwrap()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{id}: {stdout}");
    }
    server.kill();
}
