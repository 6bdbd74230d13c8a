//! `aura platform-key`: list, rotate and revoke the platform's keys
//! through any node's API, with the platform key kept in a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct PlatformKeyArgs {
    /// The API of any node.
    #[arg(
        long,
        env = "AURA_API",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    api: String,
    /// The file holding the platform key to act with; `rotate` writes the
    /// new key there.
    #[arg(
        long,
        env = "AURA_PLATFORM_KEY_FILE",
        default_value = "aura-data/bootstrap-admin.key",
        global = true
    )]
    key_file: PathBuf,
    #[command(subcommand)]
    command: PlatformKeyCommand,
}

#[derive(Debug, Subcommand)]
enum PlatformKeyCommand {
    /// The platform's keys: id, name, who minted each, expiry, revocation.
    List,
    /// Mints the successor of the key in --key-file and revokes that key,
    /// together, then writes the new key to --key-file (mode 0600).
    Rotate {
        /// The new key stops working after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revokes a platform key by id (never the last working one).
    Revoke { id: String },
}

pub fn run(args: PlatformKeyArgs) -> anyhow::Result<ExitCode> {
    let key = std::fs::read_to_string(&args.key_file).with_context(|| {
        format!(
            "cannot read the platform key from {}",
            args.key_file.display()
        )
    })?;
    let api = Api {
        base: args.api.trim_end_matches('/').to_owned(),
        key: key.trim().to_owned(),
        http: reqwest::Client::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            PlatformKeyCommand::List => list(&api).await,
            PlatformKeyCommand::Rotate { expires_in_days } => {
                rotate(&api, &args.key_file, expires_in_days).await
            }
            PlatformKeyCommand::Revoke { id } => {
                api.call(
                    reqwest::Method::DELETE,
                    &format!("/v1/platform/keys/{id}"),
                    None,
                )
                .await?;
                println!("revoked platform key {id}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    /// The answer's JSON body, or the problem's detail as the error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = value["detail"].as_str().unwrap_or(&text);
            bail!("{status}: {detail}");
        }
        Ok(value)
    }
}

async fn list(api: &Api) -> anyhow::Result<ExitCode> {
    let keys = api
        .call(reqwest::Method::GET, "/v1/platform/keys", None)
        .await?;
    println!(
        "{:<17} {:<12} {:<15} {:<15} name",
        "id", "state", "minted by", "expires at"
    );
    for k in keys.as_array().into_iter().flatten() {
        let state = if k["revoked_at"].is_null() {
            "active"
        } else {
            "revoked"
        };
        let expires = k["expires_at"]
            .as_i64()
            .map_or("never".to_owned(), |t| t.to_string());
        println!(
            "{:<17} {:<12} {:<15} {:<15} {}",
            k["id"].as_str().unwrap_or("?"),
            state,
            k["minted_by"].as_str().unwrap_or("?"),
            expires,
            k["name"].as_str().unwrap_or(""),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(api: &Api, key_file: &Path, days: Option<u32>) -> anyhow::Result<ExitCode> {
    let expires_at = days.map(|d| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        now + i64::from(d) * 86_400_000
    });
    let created = api
        .call(
            reqwest::Method::POST,
            "/v1/platform/keys/rotate",
            Some(json!({"expires_at": expires_at})),
        )
        .await?;
    let (Some(id), Some(key)) = (created["id"].as_str(), created["key"].as_str()) else {
        bail!("the API answered a rotation without a key: {created}");
    };
    // The old key no longer works: if the file cannot take the new one,
    // the terminal is the only place left to see it.
    if let Err(e) = replace_key_file(key_file, key) {
        eprintln!(
            "the key was rotated, but {} cannot be written ({e}); the new key, shown only here:\n{key}",
            key_file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "rotated: platform key {id} is in {}; the previous key is revoked",
        key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `key` to a new file beside `path` that only its owner can read,
/// then renames it over `path`: a reader never sees half a key.
fn replace_key_file(path: &Path, key: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("rotating");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(format!("{key}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
