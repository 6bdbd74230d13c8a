//! Failed DualToken checks, counted and sampled. Anyone can send a forged
//! call naming any tenant, so recording each refusal in the tenant's
//! audit chain (a replicated, fsynced entry) would let anonymous traffic
//! grow the chain and load the cluster. Each API node instead counts every
//! refusal by code (`aura_gateway_refusals_total`) and records one per
//! tenant and code per window, whose reason says how many like it went
//! unrecorded since the last one (docs/gateway.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aura_engine::ids::TenantId;

/// At most one recorded refusal per tenant, code and node in this long.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Windows kept before the idle ones are dropped.
const MAX_WINDOWS: usize = 10_000;

#[derive(Debug)]
struct Window {
    opened: Instant,
    unrecorded: u64,
}

#[derive(Debug, Default)]
pub struct RefusalSampler {
    windows: Mutex<HashMap<(TenantId, &'static str), Window>>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl RefusalSampler {
    /// Counts a refusal. `Some(n)` when it is to be recorded, `n` being how
    /// many refusals like it were not recorded since the last that was.
    pub fn sample(&self, tenant: &TenantId, code: &'static str, now: Instant) -> Option<u64> {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_WINDOWS {
            windows.retain(|_, w| now.duration_since(w.opened) < WINDOW);
        }
        match windows.get_mut(&(tenant.clone(), code)) {
            Some(w) if now.duration_since(w.opened) < WINDOW => {
                w.unrecorded += 1;
                None
            }
            Some(w) => {
                let unrecorded = w.unrecorded;
                *w = Window {
                    opened: now,
                    unrecorded: 0,
                };
                Some(unrecorded)
            }
            None => {
                windows.insert(
                    (tenant.clone(), code),
                    Window {
                        opened: now,
                        unrecorded: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// Refusals seen by this node since it started, by code.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refusal_per_tenant_and_code_is_recorded_per_window() {
        let s = RefusalSampler::default();
        let acme: TenantId = "acme".parse().unwrap();
        let beta: TenantId = "beta".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(s.sample(&acme, "bad-signature", t0), Some(0));
        for i in 1..1000 {
            let at = t0 + Duration::from_millis(i);
            assert_eq!(s.sample(&acme, "bad-signature", at), None);
        }
        assert_eq!(s.sample(&acme, "replayed-nonce", t0), Some(0));
        assert_eq!(s.sample(&beta, "bad-signature", t0), Some(0));
        // The next window's first refusal is recorded with the count.
        assert_eq!(s.sample(&acme, "bad-signature", t0 + WINDOW), Some(999));
        assert_eq!(s.counts()["bad-signature"], 1002);
    }
}
