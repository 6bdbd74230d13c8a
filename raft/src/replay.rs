//! The cluster listener's memory of request nonces: a request whose MAC
//! verifies is refused if its sender used its nonce before. A nonce is
//! kept until its request falls out of the clock window, after which the
//! request is refused as stale anyway, so memory is bounded by the
//! request rate over one window.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use crate::auth::{MAX_SKEW_MS, NONCE_BYTES};
use crate::types::NodeId;

type Key = (NodeId, [u8; NONCE_BYTES]);

#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    keys: HashSet<Key>,
    /// In arrival order, each with when it may be forgotten. Arrival order
    /// is nearly expiry order; an entry behind a later-expiring one is
    /// kept a little longer, never forgotten early.
    order: VecDeque<(i64, Key)>,
}

impl ReplayGuard {
    /// Whether this is the first use of `nonce` by `node` (and records
    /// it). `time_ms` is the request's own time, already within the
    /// window of `now_ms`.
    pub fn first_use(
        &self,
        node: NodeId,
        nonce: [u8; NONCE_BYTES],
        time_ms: i64,
        now_ms: i64,
    ) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        while seen.order.front().is_some_and(|(until, _)| *until < now_ms) {
            let (_, key) = seen.order.pop_front().expect("checked above");
            seen.keys.remove(&key);
        }
        let key = (node, nonce);
        if !seen.keys.insert(key) {
            return false;
        }
        seen.order.push_back((time_ms + MAX_SKEW_MS, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_used_once_per_node_until_its_request_is_stale() {
        let g = ReplayGuard::default();
        assert!(g.first_use(1, [1; NONCE_BYTES], 1_000, 1_000));
        assert!(!g.first_use(1, [1; NONCE_BYTES], 1_000, 2_000));
        assert!(g.first_use(2, [1; NONCE_BYTES], 1_000, 2_000));
        // Forgotten only once a request of that time is refused as stale.
        assert!(!g.first_use(1, [1; NONCE_BYTES], 1_000, 1_000 + MAX_SKEW_MS));
        assert!(g.first_use(
            3,
            [2; NONCE_BYTES],
            1_000 + MAX_SKEW_MS + 1,
            1_000 + MAX_SKEW_MS + 1
        ));
        assert_eq!(g.seen.lock().unwrap().keys.len(), 1);
    }
}
