//! Continue-as-new on a running server: a mission whose record's run fills
//! up (here: 8 entries, by heartbeats) is carried into a new run by the
//! runtime's timers, the runs are linked in the audit, and
//! `aura mission replay` rebuilds the mission from the export both through
//! every run and from the latest run alone.

use std::process::Command;
use std::time::{Duration, Instant};

use aura_api::testkit::agent::GovernedTenant;
use aura_api::testkit::{Db, TestServer};
use aura_engine::Actor;
use aura_engine::machine::CommandBody;
use aura_engine::time::Millis;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn replay(export: &std::path::Path, digest: &str, latest_run: bool) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aura"));
    cmd.args(["mission", "replay", "m1", "--export"])
        .arg(export)
        .args(["--digest", digest]);
    if latest_run {
        cmd.arg("--latest-run");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_is_continued_by_the_timers_and_both_replays_match() {
    let s = TestServer::start(Db::Sqlite).await;
    let t = GovernedTenant::create(&s, "acme", "http://127.0.0.1:9/unused").await;
    let m: Value = t
        .admin
        .post(
            "/v1/tenants/acme/missions",
            &json!({
                "id": "m1", "namespace": "prod", "agent": "bot",
                "definition": {"objective": "post invoices", "tools": ["erp.post"],
                               "authority": "L2", "timeout": 3_600_000},
                "context": {"inputs": {}, "classification": "confidential"},
                "limits": {"max_steps": 4, "max_tool_calls": 10, "max_run_entries": 8},
                "plan": [{"tool": "erp.post", "arguments": {"amount": 10}}]
            }),
        )
        .await
        .unwrap();
    assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");
    let epoch = s.claim("acme", "m1").await;
    let tenant = "acme".parse().unwrap();
    let get = || async {
        t.admin
            .get::<Value>("/v1/tenants/acme/missions/m1")
            .await
            .unwrap()
    };
    assert_eq!(get().await["run"]["number"], 1);

    // Heartbeats fill the run; the timers carry the mission on.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut beat = 0;
    let live = loop {
        let live = get().await;
        if live["run"]["number"] == 2 {
            break live;
        }
        assert!(Instant::now() < deadline, "not continued: {}", live["run"]);
        if live["run"]["entries"].as_u64().is_none_or(|n| n < 8) {
            beat += 1;
            s.propose(
                &tenant,
                Actor::Runtime,
                CommandBody::Heartbeat {
                    mission: "m1".parse().unwrap(),
                    epoch,
                    lease: Millis::from_secs(600),
                    progress: Some(json!({"beat": beat})),
                },
            )
            .await;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(live["state"], "IN_PROGRESS");
    assert_eq!(live["execution"]["progress"], json!({"beat": beat}));

    // The continuation entry links the runs.
    let entries: Value = t
        .admin
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    let entries = entries["entries"].as_array().unwrap();
    let entry = |kind: &str| {
        entries
            .iter()
            .map(|r| &r["entry"])
            .find(|e| e["kind"] == kind)
            .unwrap()
            .clone()
    };
    let created = entry("mission.create");
    let continued = entry("mission.continue_as_new");
    assert_eq!(continued["actor"], json!("runtime"), "{continued}");
    assert_eq!(live["run"]["first_seq"], continued["seq"]);
    let export = t
        .admin
        .raw(Method::GET, "/v1/tenants/acme/audit/export", None, &[])
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let text = export.body.as_str().unwrap().to_owned();
    let line = text
        .lines()
        .find(|l| l.contains("\"mission.continue_as_new\""))
        .unwrap();
    let event = &serde_json::from_str::<Value>(line).unwrap()["payload"][0];
    assert_eq!(event["event"], "run_continued");
    assert_eq!(event["previous"]["number"], 1);
    assert_eq!(event["previous"]["first_seq"], created["seq"]);
    assert_eq!(event["previous"]["entries"], 8);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.jsonl");
    std::fs::write(&file, &text).unwrap();
    let digest = live["digest"].as_str().unwrap();
    for latest_run in [false, true] {
        let (ok, stdout) = replay(&file, digest, latest_run);
        assert!(ok, "{stdout}");
        assert!(stdout.contains(", run 2: InProgress"), "{stdout}");
    }
    // The latest run alone is a handful of entries, not the whole record.
    let (_, stdout) = replay(&file, digest, true);
    assert!(stdout.contains("rebuilt from 1 entries"), "{stdout}");
    s.stop().await;
}
