//! `aura platform-key` against a running server: rotation writes the new
//! key to the file and the old one stops working; the last key is never
//! revoked; the platform's audit export verifies offline with every key
//! change in it.

use std::process::Command;

use aura_api::testkit::{Client, Db, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn aura(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aura"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_key_rotates_from_the_cli_and_every_change_is_on_the_record() {
    let s = TestServer::start(Db::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("platform.key");
    std::fs::write(&key_file, format!("{}\n", s.platform_key)).unwrap();
    let file = key_file.to_str().unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["platform-key", "--api", &s.base, "--key-file", file];
        all.extend_from_slice(args);
        aura(&all)
    };

    let out = cli(&["rotate", "--expires-in-days", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_ne!(new_key, s.platform_key);
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let old = s
        .platform()
        .raw(Method::GET, "/v1/tenants", None, &[])
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = Client::connect(&s.base, &new_key);
    let tenants: Vec<Value> = new.get("/v1/tenants").await.unwrap();
    assert!(
        tenants.is_empty(),
        "the platform's own tenant is not listed"
    );

    let out = cli(&["list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success());
    assert_eq!(listed.matches("revoked").count(), 1, "{listed}");
    assert_eq!(listed.matches("active").count(), 1, "{listed}");

    // The last working key stays, with a readable refusal.
    let id = new_key.split('_').nth(1).unwrap();
    let out = cli(&["revoke", id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("last working key"), "{err}");

    // The platform's chain (besides scheduled checkpoints): the
    // bootstrap, then the rotation by the operator with the key it
    // replaced; it verifies offline.
    let platform: Value = new.get("/v1/platform").await.unwrap();
    let entries: Value = new.get("/v1/platform/audit/entries").await.unwrap();
    let kinds: Vec<(&str, String)> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entry"]["kind"].as_str().unwrap(),
                e["entry"]["actor"].to_string(),
            )
        })
        .filter(|(kind, _)| *kind != "audit.checkpoint")
        .collect();
    assert_eq!(
        kinds,
        [
            ("tenant.create", "\"platform\"".to_owned()),
            ("directory.user_create", "\"platform\"".to_owned()),
            ("directory.key_mint", "\"platform\"".to_owned()),
            ("directory.key_mint", r#"{"user":"operator"}"#.to_owned()),
            ("directory.key_revoke", r#"{"user":"operator"}"#.to_owned()),
        ]
    );
    let export = new
        .raw(Method::GET, "/v1/platform/audit/export", None, &[])
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let export_file = dir.path().join("platform-export.jsonl");
    std::fs::write(&export_file, export.body.as_str().unwrap()).unwrap();
    let out = aura(&[
        "audit",
        "verify",
        export_file.to_str().unwrap(),
        "--key",
        platform["public_key"].as_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    s.stop().await;
}
