//! Per-step timeouts: how long a step may wait for a worker, how long a
//! worker may take over it, and how long a worker may go without a
//! heartbeat. A step that overruns stalls: the worker loses the step to
//! the next one, and a step that keeps stalling, or that no worker starts
//! in time, waits for an approver.
//!
//! The engine never reads a clock: a timeout takes effect when the runtime
//! proposes it with the time stamped in the command, and the engine checks
//! that it was due at that time.

use serde::{Deserialize, Serialize};

use crate::time::{Millis, Timestamp};

/// The longest any of the timeouts may be.
pub const MAX_TIMEOUT_MS: u64 = 7 * 24 * 3_600_000;
/// The most stalls a step may be allowed before it escalates.
pub const MAX_STALLS: u32 = 100;

/// A step's timeouts, declared by its tool (`timeouts`) or by the plan's
/// step (which wins). Each is off when absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepTimeouts {
    /// From the step becoming free for a worker (the mission queued, or its
    /// last worker's lease gone) to a worker claiming it. When it passes,
    /// no worker is coming: the step escalates.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 604_800_000))]
    pub schedule_to_start_ms: Option<u64>,
    /// From the step's start (the claim, or the previous step's report,
    /// whichever is later) to its report. When it passes, the worker loses
    /// its lease and another worker takes the step over.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 604_800_000))]
    pub start_to_close_ms: Option<u64>,
    /// The longest a lease runs without a heartbeat: claims and heartbeats
    /// asking for longer get this. A worker that misses it loses the step
    /// to the next worker, as for any lease that runs out.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 604_800_000))]
    pub heartbeat_ms: Option<u64>,
    /// Start-to-close stalls of one step before it escalates instead of
    /// going to yet another worker.
    #[serde(default = "default_max_stalls")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max_stalls: u32,
}

fn default_max_stalls() -> u32 {
    3
}

/// Which timeout a step overran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StepTimeout {
    ScheduleToStart,
    StartToClose,
}

impl StepTimeout {
    pub fn as_str(self) -> &'static str {
        match self {
            StepTimeout::ScheduleToStart => "schedule_to_start",
            StepTimeout::StartToClose => "start_to_close",
        }
    }
}

impl std::fmt::Display for StepTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StepTimeouts {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("schedule_to_start_ms", self.schedule_to_start_ms),
            ("start_to_close_ms", self.start_to_close_ms),
            ("heartbeat_ms", self.heartbeat_ms),
        ] {
            if v.is_some_and(|ms| !(1_000..=MAX_TIMEOUT_MS).contains(&ms)) {
                return Err(format!("timeouts {name} must be 1000 ms to 7 days"));
            }
        }
        if !(1..=MAX_STALLS).contains(&self.max_stalls) {
            return Err(format!("timeouts max_stalls must be 1 to {MAX_STALLS}"));
        }
        Ok(())
    }

    /// The lease a claim or heartbeat asking for `asked` gets.
    pub fn cap_lease(&self, asked: Millis) -> Millis {
        match self.heartbeat_ms {
            Some(ms) => Millis(asked.0.min(ms)),
            None => asked,
        }
    }

    /// When `timeout` falls due for a step that started (or became free)
    /// at `since`; never when it is off.
    pub fn due(&self, timeout: StepTimeout, since: Timestamp) -> Option<Timestamp> {
        let ms = match timeout {
            StepTimeout::ScheduleToStart => self.schedule_to_start_ms,
            StepTimeout::StartToClose => self.start_to_close_ms,
        }?;
        Some(since.plus(Millis(ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> StepTimeouts {
        StepTimeouts {
            schedule_to_start_ms: Some(60_000),
            start_to_close_ms: Some(5_000),
            heartbeat_ms: Some(2_000),
            max_stalls: 2,
        }
    }

    #[test]
    fn leases_are_capped_at_the_heartbeat_timeout() {
        let t = timeouts();
        assert_eq!(t.cap_lease(Millis(30_000)), Millis(2_000));
        assert_eq!(t.cap_lease(Millis(1_500)), Millis(1_500));
        let off = StepTimeouts {
            heartbeat_ms: None,
            ..t
        };
        assert_eq!(off.cap_lease(Millis(30_000)), Millis(30_000));
    }

    #[test]
    fn each_timeout_falls_due_after_its_own_span() {
        let t = timeouts();
        let since = Timestamp(1_000);
        assert_eq!(
            t.due(StepTimeout::StartToClose, since),
            Some(Timestamp(6_000))
        );
        assert_eq!(
            t.due(StepTimeout::ScheduleToStart, since),
            Some(Timestamp(61_000))
        );
        let off = StepTimeouts {
            start_to_close_ms: None,
            ..t
        };
        assert_eq!(off.due(StepTimeout::StartToClose, since), None);
    }

    #[test]
    fn out_of_range_timeouts_are_refused_with_the_field() {
        for (t, says) in [
            (
                StepTimeouts {
                    heartbeat_ms: Some(10),
                    ..timeouts()
                },
                "heartbeat_ms",
            ),
            (
                StepTimeouts {
                    start_to_close_ms: Some(MAX_TIMEOUT_MS + 1),
                    ..timeouts()
                },
                "start_to_close_ms",
            ),
            (
                StepTimeouts {
                    max_stalls: 0,
                    ..timeouts()
                },
                "max_stalls",
            ),
        ] {
            assert!(t.validate().unwrap_err().contains(says));
        }
        assert!(timeouts().validate().is_ok());
    }
}
