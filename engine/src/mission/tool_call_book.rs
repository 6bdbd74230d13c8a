//! A mission's tool-call records with their dispatch total kept beside
//! them.
//!
//! Every dispatch checks the total against the mission's tool-call limit.
//! Summing the records for it made a mission's n-th call cost O(n), so a
//! long mission's calls cost O(n²) on every replica. The total is derived
//! data: it is neither serialized nor digested, and is recounted when the
//! records are read back.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::mission::tool_call::ToolCallRecord;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ToolCallBook {
    /// By step, then call number.
    records: BTreeMap<u32, BTreeMap<u32, ToolCallRecord>>,
    /// The sum of the records' `dispatches`.
    dispatches: u64,
}

impl ToolCallBook {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ToolCallRecord> {
        self.records.values().flat_map(BTreeMap::values)
    }

    pub(crate) fn get(&self, step: u32, call: u32) -> Option<&ToolCallRecord> {
        self.records.get(&step)?.get(&call)
    }

    pub(crate) fn dispatches(&self) -> u64 {
        self.dispatches
    }

    /// The total recounted from the records, for the invariant checks.
    pub(crate) fn recount(&self) -> u64 {
        self.iter().map(|c| u64::from(c.dispatches)).sum()
    }

    /// Records `record` in place of the call's earlier record, if any.
    pub(crate) fn put(&mut self, record: ToolCallRecord) {
        let added = u64::from(record.dispatches);
        let replaced = self
            .records
            .entry(record.step)
            .or_default()
            .insert(record.call, record)
            .map_or(0, |old| u64::from(old.dispatches));
        self.dispatches = self.dispatches - replaced + added;
    }

    /// Changes a recorded call; `change` may not alter its dispatches.
    pub(crate) fn update(
        &mut self,
        step: u32,
        call: u32,
        change: impl FnOnce(&ToolCallRecord) -> ToolCallRecord,
    ) -> bool {
        let Some(record) = self
            .records
            .get_mut(&step)
            .and_then(|calls| calls.get_mut(&call))
        else {
            return false;
        };
        let changed = change(record);
        assert_eq!(
            changed.dispatches, record.dispatches,
            "a record changed in place keeps its dispatch count"
        );
        *record = changed;
        true
    }
}

impl Serialize for ToolCallBook {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.records.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToolCallBook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut book = ToolCallBook {
            records: BTreeMap::deserialize(d)?,
            dispatches: 0,
        };
        book.dispatches = book.recount();
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::time::Timestamp;

    fn first(step: u32, call: u32) -> ToolCallRecord {
        let at = Timestamp(1);
        ToolCallRecord::dispatch(
            None,
            step,
            call,
            &"erp.post".parse().unwrap(),
            "key",
            Digest::ZERO,
            at,
        )
    }

    #[test]
    fn the_total_follows_first_dispatches_and_resends() {
        let mut book = ToolCallBook::default();
        book.put(first(0, 0));
        book.put(first(1, 0));
        let resent = book.get(0, 0).unwrap().resent(Timestamp(2));
        book.put(resent);
        assert_eq!(book.dispatches(), 3);
        assert_eq!(book.dispatches(), book.recount());
        assert!(book.update(0, 0, |r| r.with_fresh_attempts(Timestamp(3))));
        assert!(!book.update(5, 0, Clone::clone));
        assert_eq!(book.dispatches(), 3);
    }

    #[test]
    fn records_read_back_are_recounted_and_written_as_the_records_alone() {
        let mut book = ToolCallBook::default();
        book.put(first(0, 0));
        book.put(first(2, 1));
        let text = serde_json::to_string(&book).unwrap();
        assert_eq!(text, serde_json::to_string(&book.records).unwrap());
        let read: ToolCallBook = serde_json::from_str(&text).unwrap();
        assert_eq!(read.dispatches(), 2);
        assert_eq!(read, book);
    }
}
