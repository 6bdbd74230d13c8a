//! A tenant's missions by id. Reading is reading the map; changing a
//! mission goes through [`Missions::get_mut`], which drops the encodings
//! kept of it ([`ClosedForm`](crate::mission::closed_form)), so a kept
//! encoding is always of the mission as it is.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Deref;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::MissionId;
use crate::mission::Mission;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Missions(BTreeMap<MissionId, Mission>);

impl Missions {
    pub(crate) fn get_mut(&mut self, id: &MissionId) -> Option<&mut Mission> {
        let m = self.0.get_mut(id)?;
        m.forget_closed_form();
        Some(m)
    }

    /// Puts `m` in under its id, in place of any mission there. It is
    /// handed back for change, so nothing kept of it (a clone may carry
    /// encodings) outlives this.
    pub(crate) fn insert(&mut self, mut m: Mission) -> &mut Mission {
        m.forget_closed_form();
        match self.0.entry(m.id().clone()) {
            Entry::Vacant(v) => v.insert(m),
            Entry::Occupied(mut o) => {
                o.insert(m);
                o.into_mut()
            }
        }
    }

    pub(crate) fn into_map(self) -> BTreeMap<MissionId, Mission> {
        self.0
    }
}

impl Deref for Missions {
    type Target = BTreeMap<MissionId, Mission>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// In JSON, the map of missions, closed ones written from the text kept
/// of them (made now if there is none yet). In the canonical encoding,
/// which only the state digest reads, each mission is its digest: a
/// closed mission's is kept, so digesting the state costs 32 bytes per
/// closed mission rather than the mission's whole encoding, and the
/// state digest still commits to every byte of every mission.
impl Serialize for Missions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let human = s.is_human_readable();
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (id, m) in &self.0 {
            match (human, m.closed_form()) {
                (false, Some(kept)) => map.serialize_entry(id, &kept.digest)?,
                (false, None) => map.serialize_entry(id, &m.digest())?,
                (true, Some(kept)) => map.serialize_entry(id, &kept.text.json)?,
                (true, None) => map.serialize_entry(id, m)?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Missions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(d).map(Missions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical;
    use crate::digest::Digest;
    use crate::sim::{WorkloadShape, state_after};

    /// A tenant's missions after a simulated workload, some closed.
    fn missions() -> Missions {
        let state = state_after(
            3,
            WorkloadShape {
                tenants: 1,
                missions: 40,
                ..WorkloadShape::default()
            },
        );
        let t = state.tenants().next().expect("a tenant");
        assert!(t.missions().values().any(|m| m.state().is_closed()));
        t.missions.clone()
    }

    /// The map written without anything kept: each mission as itself in
    /// JSON, and as its digest encoded afresh in the canonical encoding.
    fn plain(m: &Missions) -> (String, Vec<u8>) {
        let map: &BTreeMap<MissionId, Mission> = m;
        let digests: BTreeMap<&MissionId, Digest> =
            map.iter().map(|(id, m)| (id, m.digest())).collect();
        (
            serde_json::to_string(map).unwrap(),
            canonical::to_bytes(&digests).unwrap(),
        )
    }

    fn written(m: &Missions) -> (String, Vec<u8>) {
        (
            serde_json::to_string(m).unwrap(),
            canonical::to_bytes(m).unwrap(),
        )
    }

    #[test]
    fn closed_missions_are_written_from_what_is_kept_and_the_same() {
        let missions = missions();
        let kept = |m: &Missions| m.values().filter(|m| m.has_closed_form()).count();
        assert_eq!(kept(&missions), 0);
        assert_eq!(written(&missions), plain(&missions));
        let closed = missions.values().filter(|m| m.state().is_closed()).count();
        assert_eq!(kept(&missions), closed, "every closed mission is kept");
        // Written again, from the kept encodings.
        assert_eq!(written(&missions), plain(&missions));
        let back: Missions = serde_json::from_str(&written(&missions).0).unwrap();
        assert_eq!(back, missions);
    }

    #[test]
    fn a_mission_put_in_is_written_as_it_is_changed_after() {
        let mut missions = missions();
        written(&missions);
        // A clone of a kept closed mission, put back in and then changed.
        let clone = missions
            .values()
            .find(|m| m.state().is_closed())
            .cloned()
            .unwrap();
        missions.insert(clone).count_entry(7);
        assert_eq!(written(&missions), plain(&missions));
    }

    #[test]
    fn a_mission_handed_out_for_change_is_written_anew() {
        let mut missions = missions();
        let id = missions
            .values()
            .find(|m| m.state().is_closed())
            .map(|m| m.id().clone())
            .unwrap();
        let before = written(&missions);
        missions.get_mut(&id).unwrap().count_entry(7);
        let after = written(&missions);
        assert_ne!(after, before);
        assert_eq!(after, plain(&missions));
    }
}
