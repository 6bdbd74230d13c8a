//! What the API benchmarks share: load knobs from the environment, the
//! runtime, and a local no-op tool.

use aura_api::testkit::agent::RecordingTool;
use serde_json::json;

/// The allocator `aura serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `key` from the environment as a number, or `default`.
pub fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The runtime, in a process set up for memory as `aura serve` sets it up.
pub fn runtime() -> tokio::runtime::Runtime {
    if let Err(e) = aura_api::memory::disable_transparent_huge_pages() {
        eprintln!("transparent huge pages stay on: {e}");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A local tool that answers every call with `{"ok": true}`.
pub async fn noop_tool() -> RecordingTool {
    RecordingTool::start_with(|_| async { (reqwest::StatusCode::OK, json!({"ok": true})) }).await
}
