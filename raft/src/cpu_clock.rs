//! CPU clocks, for the counters that say where a node's CPU goes.
//! Applying entries, writing the log and building snapshots are the work
//! every replica does again for the same command; a cluster on shared
//! cores is bound by it long before anything done once per command
//! (`docs/runtime.md`, "Throughput").

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rustix::time::ClockId;

/// CPU time the calling thread has used since it started, user and
/// system, in nanoseconds.
pub fn thread_nanos() -> u64 {
    nanos(ClockId::ThreadCPUTime)
}

/// CPU time the whole process has used, on all its threads, in
/// nanoseconds.
pub fn process_nanos() -> u64 {
    nanos(ClockId::ProcessCPUTime)
}

fn nanos(clock: ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Runs `f` and adds the CPU time this thread spent in it to `total`.
/// `f` does not yield, so that time is all its own.
pub(crate) fn counted<R>(total: &AtomicU64, f: impl FnOnce() -> R) -> R {
    let start = thread_nanos();
    let r = f();
    total.fetch_add(thread_nanos().saturating_sub(start), Relaxed);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_done_inside_is_counted_and_time_asleep_is_not() {
        let total = AtomicU64::new(0);
        let sum = counted(&total, || {
            (0..2_000_000u64).fold(0u64, |a, b| a ^ b.wrapping_mul(31))
        });
        std::hint::black_box(sum);
        let busy = total.load(Relaxed);
        assert!(busy > 0, "a loop of two million steps took no CPU");
        counted(&total, || {
            std::thread::sleep(std::time::Duration::from_millis(50))
        });
        let slept = total.load(Relaxed) - busy;
        assert!(
            slept < 20_000_000,
            "sleeping 50 ms counted {slept} ns of CPU"
        );
    }
}
