//! The state digest as version 2 defined it, which snapshots of format
//! `aura.engine-snapshot/2` carry: the canonical encoding of the whole
//! state with every mission encoded whole. A node upgraded past it still
//! restores the snapshot an older version left on disk, or a member
//! still on that version sends it, and checks it against the digest it
//! carries.
//!
//! The canonical encoding writes struct fields in declaration order
//! without names, so the state digest's view (field for field in
//! [`TenantState`]'s order), with every mission whole, encodes to the
//! bytes version 2 hashed.
//! `restores_a_format_2_snapshot` holds them to a snapshot that version
//! wrote.

use std::collections::BTreeMap;

use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::ids::MissionId;
use crate::machine::state::{EngineState, TenantState};
use crate::machine::state_digest::{State, Tenant};
use crate::mission::Mission;

const STATE_DOMAIN_V2: Domain = Domain::new("aura.engine-state/2");

/// The version 2 digest of `state`.
pub(crate) fn digest(state: &EngineState) -> Digest {
    let view = State {
        tenants: state
            .tenants
            .iter()
            .map(|(id, t)| (id, Tenant::of(t, whole(t))))
            .collect(),
    };
    canonical::digest(STATE_DOMAIN_V2, &view).expect("engine state is always encodable")
}

/// Every mission whole: the map behind `Missions`.
fn whole(t: &TenantState) -> &BTreeMap<MissionId, Mission> {
    &t.missions
}
