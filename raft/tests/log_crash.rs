//! A child process appends to the log under load and is killed with
//! SIGKILL at random points; after every reopen no acknowledged entry is
//! missing and the log is a valid, contiguous prefix.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use aura_engine::sim::{self, SimRng, WorkloadShape};
use aura_raft::log_store::LogStore;
use aura_raft::types::{AuraRaft, Entry, Proposal};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::testing::log_id;
use openraft::type_config::TypeConfigExt;

const CHILD_ENV: &str = "AURA_LOG_CRASH_CHILD_DIR";
/// Small, so that compaction (a file rewrite) happens during the kills.
const COMPACT_BYTES: u64 = 256 * 1024;

/// The entry at `index` is a function of the index, so the parent can
/// check contents without talking to the child.
fn entry_at(index: u64, workload: &[aura_engine::machine::Command]) -> Entry {
    let cmd = workload[(index as usize) % workload.len()].clone();
    Entry::new_normal(log_id::<AuraRaft>(1, 1, index), Proposal::new(cmd))
}

fn workload() -> Vec<aura_engine::machine::Command> {
    sim::generate(
        7,
        WorkloadShape {
            missions: 20,
            ..WorkloadShape::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child side of sigkill_at_random_points_loses_no_acknowledged_entry"]
async fn crash_child_appends_until_killed() {
    let dir = std::env::var(CHILD_ENV).expect("run by the crash test");
    let workload = workload();
    let (mut log, _) = LogStore::open_with(dir.as_ref(), COMPACT_BYTES).expect("log opens");
    let state = log.get_log_state().await.unwrap();
    let mut next = state.last_log_id.map_or(1, |l| l.index + 1);
    // Bounded, like openraft's IO pipeline: at most 64 batches in flight.
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel(64);
    // Acknowledge in order, as openraft would: a batch is acknowledged
    // only when its flush callback fires.
    let acker = tokio::spawn(async move {
        let mut out = std::io::stdout();
        while let Some((last, rx)) = ack_rx.recv().await {
            let r: Result<Result<(), std::io::Error>, _> = rx.await;
            r.expect("writer alive").expect("write durable");
            writeln!(out, "ACK {last}").unwrap();
            out.flush().unwrap();
        }
    });
    let mut rng = SimRng::new(next);
    loop {
        let n = 1 + rng.below(16);
        let batch: Vec<Entry> = (next..next + n).map(|i| entry_at(i, &workload)).collect();
        let (tx, rx) = AuraRaft::oneshot();
        log.append(batch, IOFlushed::signal(tx)).await.unwrap();
        next += n;
        ack_tx.send((next - 1, rx)).await.unwrap();
        if rng.chance(2) {
            log.save_vote(&openraft::Vote::new_committed(1, 1))
                .await
                .unwrap();
        }
        if next % 2_000 < n && next > 6_000 {
            log.purge(log_id::<AuraRaft>(1, 1, next - 5_000))
                .await
                .unwrap();
        }
        if rng.chance(20) {
            tokio::task::yield_now().await;
        }
        if acker.is_finished() {
            panic!("acknowledger stopped");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let workload = workload();
    let mut rng = SimRng::new(2026);
    let mut highest_acked = 0u64;
    let kills = 24;
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_appends_until_killed",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child starts");
        std::thread::sleep(Duration::from_millis(150 + rng.below(400)));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut acked_this_round = 0;
        for line in out.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                acked_this_round = acked_this_round.max(n.parse::<u64>().unwrap());
            }
        }
        highest_acked = highest_acked.max(acked_this_round);

        let (mut log, report) =
            LogStore::open_with(dir.path(), COMPACT_BYTES).expect("log reopens after SIGKILL");
        let state = log.get_log_state().await.unwrap();
        let last = state.last_log_id.as_ref().map_or(0, |l| l.index);
        let first = state.last_purged_log_id.as_ref().map_or(1, |l| l.index + 1);
        assert!(
            last >= highest_acked,
            "round {round}: entry {highest_acked} was acknowledged but the log ends at {last} (cut {} bytes)",
            report.cut_bytes
        );
        // Otherwise the checks below would only look at entries nobody
        // was told about.
        assert!(
            acked_this_round == 0 || acked_this_round >= first,
            "round {round}: acknowledged entries were purged before the check"
        );
        let indexes = log.indexes();
        let expected: Vec<u64> = (first..=last).collect();
        assert_eq!(
            indexes, expected,
            "round {round}: the log is not a contiguous prefix"
        );
        let entries = log.try_get_log_entries(first..=last).await.unwrap();
        for e in &entries {
            let want = entry_at(e.index(), &workload);
            assert_eq!(e, &want, "round {round}: entry {} was changed", e.index());
        }
        drop(log);
        eprintln!(
            "round {round}: acked up to {acked_this_round}, log {first}..={last}, cut {} bytes",
            report.cut_bytes
        );
    }
    assert!(
        highest_acked > 100,
        "the child made too little progress to test anything"
    );
}

/// Acknowledgements come only after `fdatasync`: the child runs under
/// strace, and no `ACK` is printed before the log has been synced, and
/// the log is synced again and again while the child acknowledges.
#[test]
fn acknowledgements_follow_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("strace.out");
    let strace = which("strace").expect("strace is needed for this test (apt-get install strace)");
    let mut child = Command::new(strace)
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=fdatasync,write",
            "-e",
            "signal=none",
            "-o",
        ])
        .arg(&trace)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_appends_until_killed",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path().join("log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace starts");
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let (mut syncs, mut acks) = (0usize, 0usize);
    for line in text.lines() {
        if line.contains("fdatasync") && line.contains("= 0") {
            syncs += 1;
        } else if line.contains("write(1, \"ACK ") {
            assert!(
                syncs > 0,
                "an entry was acknowledged before any fdatasync:\n{line}"
            );
            acks += 1;
        }
    }
    assert!(
        acks > 10,
        "the child acknowledged too little to judge ({acks} acks)"
    );
    assert!(
        syncs > 10,
        "{acks} acknowledgements but only {syncs} fdatasync calls"
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}
