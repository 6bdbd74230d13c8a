//! The missions a runtime loop on this node is already working on, so that
//! its next scan of the engine state does not start the same work twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aura_engine::ids::{MissionId, TenantId};

pub(crate) type MissionKey = (TenantId, MissionId);

#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<MissionKey>>>);

impl InFlight {
    pub(crate) fn contains(&self, key: &MissionKey) -> bool {
        self.0.lock().expect("not poisoned").contains(key)
    }

    /// Marks the mission taken; false if it already was.
    pub(crate) fn take(&self, key: MissionKey) -> bool {
        self.0.lock().expect("not poisoned").insert(key)
    }

    pub(crate) fn release(&self, key: &MissionKey) {
        self.0.lock().expect("not poisoned").remove(key);
    }
}
