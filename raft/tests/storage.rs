//! The log and state machine stores: openraft's conformance suite, and
//! what survives a reopen.

use aura_raft::log_store::LogStore;
use aura_raft::state_machine::EngineStore;
use aura_raft::types::AuraRaft;
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<AuraRaft, LogStore, EngineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, EngineStore), StorageError<AuraRaft>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, _) = LogStore::open(dir.path()).expect("log opens");
        let sm = EngineStore::open(dir.path()).expect("state machine opens");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_conformance_suite_passes() {
    Suite::test_all(Builder).await.expect("conformance suite");
}

/// The same suite against stores that are closed and reopened from disk
/// before every check: what the suite wrote must come back.
struct Reopening;

impl StoreBuilder<AuraRaft, LogStore, EngineStore, TempDir> for Reopening {
    async fn build(&self) -> Result<(TempDir, LogStore, EngineStore), StorageError<AuraRaft>> {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(LogStore::open(dir.path()).expect("log opens"));
        let (log, _) = LogStore::open(dir.path()).expect("log reopens");
        let sm = EngineStore::open(dir.path()).expect("state machine opens");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_holds_on_a_reopened_log() {
    Suite::test_all(Reopening).await.expect("conformance suite");
}
