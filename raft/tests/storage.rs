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
        let sm = EngineStore::open(
            dir.path(),
            aura_raft::LogFormat::NEWEST,
            aura_engine::identity::Kek::from_material(&[7; 32]).expect("32 bytes"),
        )
        .expect("state machine opens");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_conformance_suite_passes() {
    Suite::test_all(Builder).await.expect("conformance suite");
}

mod reopen {
    use std::io::Write;

    use aura_raft::log_file::LogFileError;
    use aura_raft::log_store::LogStore;
    use aura_raft::types::{AuraRaft, Entry};
    use openraft::entry::RaftEntry;
    use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
    use openraft::testing::log_id;
    use openraft::type_config::TypeConfigExt;

    fn blank(term: u64, index: u64) -> Entry {
        Entry::new_blank(log_id::<AuraRaft>(term, 1, index))
    }

    async fn append(log: &mut LogStore, entries: Vec<Entry>) {
        let (tx, rx) = AuraRaft::oneshot();
        log.append(entries, IOFlushed::signal(tx)).await.unwrap();
        rx.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncation_purge_vote_and_commit_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = LogStore::open(dir.path()).unwrap();
            append(&mut log, (1..=20).map(|i| blank(1, i)).collect()).await;
            log.truncate_after(Some(log_id::<AuraRaft>(1, 1, 10)))
                .await
                .unwrap();
            append(&mut log, (11..=15).map(|i| blank(2, i)).collect()).await;
            log.save_vote(&openraft::Vote::new_committed(2, 1))
                .await
                .unwrap();
            log.save_committed(Some(log_id::<AuraRaft>(2, 1, 13)))
                .await
                .unwrap();
            log.purge(log_id::<AuraRaft>(1, 1, 5)).await.unwrap();
            log.sync().await.unwrap();
        }
        let (mut log, report) = LogStore::open(dir.path()).unwrap();
        assert_eq!(report.cut_bytes, 0);
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id::<AuraRaft>(1, 1, 5)));
        assert_eq!(state.last_log_id, Some(log_id::<AuraRaft>(2, 1, 15)));
        let entries = log.try_get_log_entries(0..100).await.unwrap();
        let ids: Vec<_> = entries.iter().map(|e| e.log_id()).collect();
        let want: Vec<_> = (6..=10)
            .map(|i| log_id::<AuraRaft>(1, 1, i))
            .chain((11..=15).map(|i| log_id::<AuraRaft>(2, 1, i)))
            .collect();
        assert_eq!(
            ids, want,
            "the truncated entries of term 1 must not come back"
        );
        assert_eq!(
            log.read_vote().await.unwrap(),
            Some(openraft::Vote::new_committed(2, 1))
        );
        assert_eq!(
            log.read_committed().await.unwrap(),
            Some(log_id::<AuraRaft>(2, 1, 13))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_torn_tail_is_cut_but_corruption_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = LogStore::open(dir.path()).unwrap();
            append(&mut log, (1..=5).map(|i| blank(1, i)).collect()).await;
        }
        let path = LogStore::path(dir.path());
        let good_len = std::fs::metadata(&path).unwrap().len();
        // Half a record, as a crash in the middle of a write leaves it.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"'])
            .unwrap();
        drop(f);
        let (mut log, report) = LogStore::open(dir.path()).unwrap();
        assert_eq!(report.cut_bytes, 10);
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id::<AuraRaft>(1, 1, 5))
        );
        append(&mut log, vec![blank(1, 6)]).await;
        drop(log);
        assert!(std::fs::metadata(&path).unwrap().len() > good_len);

        // A flipped byte early in a long log is not a torn write: opening
        // refuses instead of silently dropping everything after it.
        let mut bytes = std::fs::read(&path).unwrap();
        let filler = vec![b'x'; 80 * 1024 * 1024];
        bytes[20] ^= 0xff;
        bytes.extend_from_slice(&filler);
        std::fs::write(&path, &bytes).unwrap();
        let err = LogStore::open(dir.path()).expect_err("corruption must be refused");
        assert!(matches!(err, LogFileError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("corrupt at byte"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            bytes.len(),
            "a refused open changed the file"
        );
    }
}

mod group_commit {
    use std::sync::atomic::Ordering::Relaxed;

    use aura_raft::log_store::LogStore;
    use aura_raft::types::{AuraRaft, Entry};
    use openraft::entry::RaftEntry;
    use openraft::storage::{IOFlushed, RaftLogStorage};
    use openraft::testing::log_id;
    use openraft::type_config::TypeConfigExt;

    /// Appends queued while a sync runs share the next one: 200 appends
    /// in flight at once must not cost 200 `fdatasync`s.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LogStore::open(dir.path()).unwrap();
        let mut waiting = Vec::new();
        for i in 1..=200 {
            let (tx, rx) = AuraRaft::oneshot();
            let e = Entry::new_blank(log_id::<AuraRaft>(1, 1, i));
            log.append([e], IOFlushed::signal(tx)).await.unwrap();
            waiting.push(rx);
        }
        for rx in waiting {
            rx.await.unwrap().expect("durable");
        }
        let appends = log.stats().appends.load(Relaxed);
        let syncs = log.stats().syncs.load(Relaxed);
        assert_eq!(appends, 200);
        assert!(
            log.stats().cpu_nanos.load(Relaxed) > 0,
            "the writer's thread counted no CPU"
        );
        assert!(
            syncs < 40,
            "{appends} appends took {syncs} syncs: writes are not grouped"
        );
        eprintln!("{appends} appends in {syncs} syncs");
    }
}
