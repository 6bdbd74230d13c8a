//! Checkpoints without a manual step: the leader signs each chain on a
//! schedule, an export verifies the moment it is taken, and an export cut
//! short after one of its own checkpoints is caught against a checkpoint
//! seen earlier (`aura audit verify --trusted-checkpoint`).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use aura_api::Role;
use aura_api::runtime::checkpoints::CheckpointSchedule;
use aura_api::testkit::{self, Client, Db, TestServer, eventually};
use reqwest::Method;
use serde_json::{Value, json};

fn verify(export: &Path, key: &str, trusted: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aura"));
    cmd.args(["audit", "verify"])
        .arg(export)
        .args(["--key", key]);
    if let Some(t) = trusted {
        cmd.arg("--trusted-checkpoint").arg(t);
    }
    cmd.output().unwrap()
}

async fn export(auditor: &Client) -> String {
    let r = auditor
        .raw(Method::GET, "/v1/tenants/acme/audit/export", None, &[])
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    r.body.as_str().unwrap().to_owned()
}

async fn checkpoints(auditor: &Client) -> Vec<Value> {
    auditor
        .get("/v1/tenants/acme/audit/checkpoints")
        .await
        .unwrap()
}

/// Some entries: namespaces created one after another.
async fn grow(admin: &Client, from: usize, n: usize) {
    for i in from..from + n {
        admin
            .create_namespace("acme", &format!("ns{i}"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_verify_at_once_and_a_cut_is_caught_against_a_trusted_checkpoint() {
    let mut config = testkit::api_config();
    config.checkpoints = CheckpointSchedule {
        entries: 4,
        interval: Duration::from_secs(3600),
    };
    let s = TestServer::start_with(Db::Sqlite, config).await;
    let created = s.platform().create_tenant("acme").await.unwrap();
    let key = created.tenant.public_key.clone();
    let admin = s.client(&created.admin_key.key);
    let auditor = s.client(
        &admin
            .create_key("acme", "admin", &[Role::Auditor])
            .await
            .unwrap()
            .key,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.jsonl");

    // Nobody signs anything by hand: the schedule does, every 4 entries.
    for (round, from) in [(1, 0), (2, 5)] {
        grow(&admin, from, 5).await;
        eventually("a scheduled checkpoint", || async {
            checkpoints(&auditor).await.len() >= round
        })
        .await;
    }
    // Entries after the last scheduled checkpoint: the export signs them
    // first, so it verifies as it is.
    admin.create_namespace("acme", "tail").await.unwrap();
    let first = export(&auditor).await;
    std::fs::write(&file, &first).unwrap();
    let out = verify(&file, &key, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let header: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let last: Value = serde_json::from_str(first.lines().last().unwrap()).unwrap();
    let note = last["checkpoint"]
        .as_str()
        .expect("the export ends with a checkpoint");
    assert!(
        note.contains(&format!("\n{}\n", header["entries"])),
        "{note}"
    );

    // An auditor keeps the latest checkpoint, as the API lists it.
    grow(&admin, 10, 6).await;
    let whole = export(&auditor).await;
    let latest = checkpoints(&auditor).await.pop().unwrap();
    let pinned = dir.path().join("pinned.json");
    std::fs::write(&pinned, latest.to_string()).unwrap();
    std::fs::write(&file, &whole).unwrap();
    assert!(verify(&file, &key, Some(&pinned)).status.success());

    // Cut after an earlier checkpoint, the header's count edited to match.
    let lines: Vec<&str> = whole.lines().collect();
    let (cut, size) = lines
        .iter()
        .enumerate()
        .rev()
        .filter_map(|(i, l)| {
            let v: Value = serde_json::from_str(l).ok()?;
            let note = v.get("checkpoint")?.as_str()?.to_owned();
            Some((i, note.lines().nth(1)?.parse::<u64>().ok()?))
        })
        .nth(1)
        .expect("two checkpoints in the export");
    let mut header: Value = serde_json::from_str(lines[0]).unwrap();
    header["entries"] = json!(size);
    let mut truncated = vec![header.to_string()];
    truncated.extend(lines[1..=cut].iter().map(|l| (*l).to_owned()));
    std::fs::write(&file, truncated.join("\n") + "\n").unwrap();
    let out = verify(&file, &key, None);
    assert!(
        out.status.success(),
        "nothing inside the export reveals the cut: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = verify(&file, &key, Some(&pinned));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("entries were removed"), "{stdout}");

    // The note form works as well as the API's JSON.
    let note = dir.path().join("pinned.note");
    let last: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    std::fs::write(&note, last["checkpoint"].as_str().unwrap()).unwrap();
    let out = verify(&file, &key, Some(&note));
    assert_eq!(out.status.code(), Some(1));
    s.stop().await;
}

/// A rotation of the tenant's signing key, over the API: the export names
/// both keys, and `aura audit verify` follows the rotation from the first
/// key or the new one; a key the tenant never had is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_follows_a_signing_key_rotation_recorded_in_the_chain() {
    let s = TestServer::start(Db::Sqlite).await;
    let created = s.platform().create_tenant("acme").await.unwrap();
    let first = created.tenant.public_key.clone();
    let admin = s.client(&created.admin_key.key);
    grow(&admin, 0, 3).await;
    let _: Value = admin
        .post("/v1/tenants/acme/audit/checkpoints", &json!({}))
        .await
        .unwrap();
    let rotated: Value = admin
        .post(
            "/v1/tenants/acme/signing-keys",
            &json!({"retirement": "scheduled"}),
        )
        .await
        .unwrap();
    let second = rotated["public_key"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    grow(&admin, 3, 3).await;
    let whole = export(&admin).await;
    let header: Value = serde_json::from_str(whole.lines().next().unwrap()).unwrap();
    assert_eq!(header["format"], "aura.audit-export/2");
    assert_eq!(header["keys"], json!([first, second]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, &whole).unwrap();
    for key in [&first, &second] {
        let out = verify(&file, key, None);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("rotated 1 times"), "{stdout}");
    }
    let stranger = aura_engine::identity::KeyPair::from_seed([7; 32])
        .public()
        .to_base64();
    let out = verify(&file, &stranger, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("not the trusted key"), "{stdout}");
    s.stop().await;
}
