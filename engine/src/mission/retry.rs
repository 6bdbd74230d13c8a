//! Retry policies: when a failed tool call (or compensation) may be sent
//! again, and when it may not be any more.
//!
//! A retry is the same call sent again: same step, same call number, same
//! idempotency key. The schedule is computed when the failure is recorded,
//! from the time stamped into that command, so every replica (and every
//! replay) agrees on when the next attempt is due.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::mission::tool_call::CallFailure;
use crate::time::{Millis, Timestamp};

/// The longest interval and duration a policy may name: one day.
const MAX_SPAN_MS: u64 = 24 * 3600 * 1000;
pub const MAX_ATTEMPTS: u32 = 100;

/// A backoff multiplier, kept in thousandths so that the schedule is
/// integer arithmetic (the same on every machine); written as a decimal
/// number such as `2.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Coefficient(u32);

impl Coefficient {
    pub const MIN: f64 = 1.0;
    pub const MAX: f64 = 10.0;

    pub fn new(value: f64) -> Result<Coefficient, String> {
        if !(Self::MIN..=Self::MAX).contains(&value) {
            return Err(format!(
                "backoff_coefficient {value} is outside {} to {}",
                Self::MIN,
                Self::MAX
            ));
        }
        // In range, so the rounded thousandths fit a u32.
        Ok(Coefficient((value * 1000.0).round() as u32))
    }

    pub fn thousandths(self) -> u32 {
        self.0
    }
}

impl Serialize for Coefficient {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Coefficient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Coefficient::new(v).map_err(serde::de::Error::custom)
    }
}

/// What happens when a call has used up its retries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OnExhaustion {
    /// The step fails for good; completed steps are compensated.
    #[default]
    Fail,
    /// The step pauses and an approver decides: approving gives the call
    /// a fresh set of attempts, rejecting fails the step.
    Escalate,
}

/// How a failed call is retried. Every field has a default, so `{}` is
/// the default policy: three attempts, 1 s then 2 s apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryPolicy {
    /// Wait before the second attempt.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86_400_000))]
    pub initial_interval_ms: u64,
    /// Each wait is the previous one times this.
    pub backoff_coefficient: Coefficient,
    /// No wait is longer than this.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86_400_000))]
    pub maximum_interval_ms: u64,
    /// Attempts in all, the first included; 1 means no retry.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub maximum_attempts: u32,
    /// No attempt starts later than this after the first one did.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86_400_000))]
    pub maximum_duration_ms: Option<u64>,
    /// Failures that are never retried (an answer the tool will give again,
    /// say `invalid_response`).
    pub non_retryable: BTreeSet<CallFailure>,
    pub on_exhaustion: OnExhaustion,
}

/// [`RetryPolicy::DEFAULT`] as a `static`, so that whatever has no policy
/// of its own borrows the default rather than building one each time.
pub static DEFAULT_RETRY_POLICY: RetryPolicy = RetryPolicy::DEFAULT;

impl RetryPolicy {
    /// The policy of a call whose tool and step name none.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        initial_interval_ms: 1000,
        backoff_coefficient: Coefficient(2000),
        maximum_interval_ms: 60_000,
        maximum_attempts: 3,
        maximum_duration_ms: None,
        non_retryable: BTreeSet::new(),
        on_exhaustion: OnExhaustion::Fail,
    };
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
    }
}

/// Where a failed call stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "retry")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RetryState {
    /// It may be sent again (same key) from `not_before` on.
    Scheduled { attempt: u32, not_before: Timestamp },
    /// It will not be sent again.
    Exhausted { attempts: u32, why: String },
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), String> {
        let span = 1..=MAX_SPAN_MS;
        if !span.contains(&self.initial_interval_ms) {
            return Err("retry initial_interval_ms must be 1 ms to 1 day".into());
        }
        if !span.contains(&self.maximum_interval_ms)
            || self.maximum_interval_ms < self.initial_interval_ms
        {
            return Err(
                "retry maximum_interval_ms must be at least initial_interval_ms and at most 1 day"
                    .into(),
            );
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.maximum_attempts) {
            return Err(format!(
                "retry maximum_attempts must be 1 to {MAX_ATTEMPTS}"
            ));
        }
        if self.maximum_duration_ms.is_some_and(|d| !span.contains(&d)) {
            return Err("retry maximum_duration_ms must be 1 ms to 1 day".into());
        }
        Ok(())
    }

    /// The wait after the `failures`-th failed attempt (from 1).
    pub fn interval(&self, failures: u32) -> Millis {
        let mut wait = self.initial_interval_ms;
        for _ in 1..failures {
            if wait >= self.maximum_interval_ms {
                break;
            }
            wait = wait.saturating_mul(u64::from(self.backoff_coefficient.0)) / 1000;
        }
        Millis(wait.min(self.maximum_interval_ms))
    }

    /// What follows the `failures`-th failed attempt, which ended at `at`;
    /// the first attempt started at `first_at`.
    pub fn after_failure(
        &self,
        failure: CallFailure,
        failures: u32,
        first_at: Timestamp,
        at: Timestamp,
    ) -> RetryState {
        if failure == CallFailure::EgressRefused || self.non_retryable.contains(&failure) {
            return RetryState::Exhausted {
                attempts: failures,
                why: format!("`{}` failures are not retried", failure.code()),
            };
        }
        if failures >= self.maximum_attempts {
            return RetryState::Exhausted {
                attempts: failures,
                why: format!("all {} attempts failed", self.maximum_attempts),
            };
        }
        let not_before = at.plus(self.interval(failures));
        if let Some(max) = self.maximum_duration_ms
            && not_before.as_millis() - first_at.as_millis()
                > i64::try_from(max).unwrap_or(i64::MAX)
        {
            return RetryState::Exhausted {
                attempts: failures,
                why: format!("the next attempt would start after the {max} ms allowed"),
            };
        }
        RetryState::Scheduled {
            attempt: failures + 1,
            not_before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_interval_ms: 100,
            backoff_coefficient: Coefficient::new(3.0).unwrap(),
            maximum_interval_ms: 1000,
            maximum_attempts: 6,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn waits_grow_by_the_coefficient_up_to_the_maximum() {
        let p = policy();
        let waits: Vec<u64> = (1..=6).map(|n| p.interval(n).0).collect();
        assert_eq!(waits, [100, 300, 900, 1000, 1000, 1000]);
        let p = RetryPolicy {
            backoff_coefficient: Coefficient::new(1.5).unwrap(),
            ..policy()
        };
        assert_eq!(p.interval(3).0, 225);
    }

    #[test]
    fn attempts_duration_and_kinds_end_the_retries() {
        let p = policy();
        let t0 = Timestamp(1_000);
        assert_eq!(
            p.after_failure(CallFailure::Timeout, 1, t0, Timestamp(1_050)),
            RetryState::Scheduled {
                attempt: 2,
                not_before: Timestamp(1_150)
            }
        );
        assert!(matches!(
            p.after_failure(CallFailure::Timeout, 6, t0, Timestamp(5_000)),
            RetryState::Exhausted { attempts: 6, .. }
        ));
        let p = RetryPolicy {
            maximum_duration_ms: Some(500),
            non_retryable: [CallFailure::InvalidResponse].into(),
            ..policy()
        };
        assert!(matches!(
            p.after_failure(CallFailure::Unreachable, 3, t0, Timestamp(1_400)),
            RetryState::Exhausted { .. }
        ));
        assert!(matches!(
            p.after_failure(CallFailure::InvalidResponse, 1, t0, t0),
            RetryState::Exhausted { attempts: 1, .. }
        ));
        // The egress policy would refuse the same destination again.
        assert!(matches!(
            policy().after_failure(CallFailure::EgressRefused, 1, t0, t0),
            RetryState::Exhausted { attempts: 1, .. }
        ));
    }

    #[test]
    fn policies_are_checked_and_default_from_an_empty_object() {
        let p: RetryPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, RetryPolicy::default());
        assert!(p.validate().is_ok());
        let p: RetryPolicy =
            serde_json::from_str(r#"{"backoff_coefficient": 1.25, "maximum_attempts": 5}"#)
                .unwrap();
        assert_eq!(p.backoff_coefficient.thousandths(), 1250);
        assert_eq!(
            serde_json::to_value(&p).unwrap()["backoff_coefficient"],
            1.25
        );
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"backoff_coefficient": 0.5}"#).is_err());
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"tries": 2}"#).is_err());
        for bad in [
            RetryPolicy {
                maximum_attempts: 0,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                maximum_interval_ms: 10,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                maximum_duration_ms: Some(0),
                ..RetryPolicy::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
