//! Where each owned partition's consumption stands, and which offset a commit
//! may write for it. Pure: the engine feeds it the offsets it processes and
//! the positions the consumer reports.
//!
//! The invariants that keep counts exact:
//! - a partition starts only from an offset this session has proven: the
//!   group's stable committed offset (KIP-447: no open transaction may still
//!   move it) or, for a counting partition, the position its store recorded
//!   in the changelog in the same transactions as its counts;
//! - within a session no offset is processed twice, even when the consumer
//!   hands out records from before a seek;
//! - a commit never moves an offset backwards, and after an aborted
//!   transaction the partition goes back to exactly its last commit.

/// Where a partition starts: a committed offset, or the beginning when
/// nothing was ever committed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Offset(i64),
    Beginning,
}

impl Start {
    pub fn from_committed(offset: Option<i64>) -> Self {
        offset.map_or(Start::Beginning, Start::Offset)
    }

    /// The lowest offset a record processed after this start can have.
    fn first(self) -> i64 {
        match self {
            Start::Offset(o) => o,
            Start::Beginning => 0,
        }
    }
}

/// Where a counting partition resumes once its store is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoredStart {
    pub start: Start,
    /// The group's committed offset differs from the store's position. Under
    /// exactly-once both are written by the same transactions; the store's
    /// position wins because it is atomic with the counts it describes.
    pub disagrees_with_group: bool,
}

/// The position recorded in the store (from the changelog) wins; a store that
/// recorded none (written by an older version, or never committed) follows the
/// group; with neither, the partition starts at its beginning.
pub fn restored_start(store_position: Option<i64>, group_offset: Option<i64>) -> RestoredStart {
    match (store_position, group_offset) {
        (Some(p), g) => RestoredStart {
            start: Start::Offset(p),
            disagrees_with_group: g.is_some_and(|g| g != p),
        },
        (None, g) => RestoredStart {
            start: Start::from_committed(g),
            disagrees_with_group: false,
        },
    }
}

/// The offsets of one owned partition in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    committed: Start,
    /// Offset after the last processed record, if any since the last commit or rewind.
    processed: Option<i64>,
}

impl PartitionOffsets {
    pub fn new(start: Start) -> Self {
        Self {
            committed: start,
            processed: None,
        }
    }

    /// The next offset this partition may process.
    pub fn next(&self) -> i64 {
        self.processed.unwrap_or_else(|| self.committed.first())
    }

    /// Whether the record at `offset` is new and may be processed (and then
    /// it counts as processed). Older ones are records the consumer fetched
    /// before a seek: processing them again would count them twice.
    pub fn accept(&mut self, offset: i64) -> bool {
        if offset < self.next() {
            return false;
        }
        self.processed = Some(offset + 1);
        true
    }

    /// The offset to commit, if it moved. `position` is the consumer's
    /// position, which also steps over transaction markers and aborted
    /// records; it is used when it is at or past what was processed (every
    /// record the consumer returned was processed or was older than `next`).
    pub fn to_commit(&self, position: Option<i64>) -> Option<i64> {
        let next = self.next();
        let at = position.map_or(next, |p| p.max(next));
        match self.committed {
            Start::Offset(c) if at <= c => None,
            Start::Beginning if self.processed.is_none() && position.is_none() => None,
            _ => Some(at),
        }
    }

    /// The transaction holding `offset` committed.
    pub fn committed(&mut self, offset: i64) {
        self.committed = Start::Offset(offset);
        if self.processed.is_some_and(|p| p <= offset) {
            self.processed = None;
        }
    }

    /// The uncommitted work was discarded: where to seek to process it again.
    pub fn rewind(&mut self) -> Start {
        self.processed = None;
        self.committed
    }

    pub fn committed_start(&self) -> Start {
        self.committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_position_wins_and_a_disagreement_is_reported() {
        assert_eq!(
            restored_start(Some(40), Some(40)),
            RestoredStart {
                start: Start::Offset(40),
                disagrees_with_group: false
            }
        );
        assert_eq!(
            restored_start(Some(40), Some(12)),
            RestoredStart {
                start: Start::Offset(40),
                disagrees_with_group: true
            }
        );
        assert_eq!(restored_start(Some(40), None).start, Start::Offset(40));
        assert_eq!(restored_start(None, Some(12)).start, Start::Offset(12));
        assert_eq!(restored_start(None, None).start, Start::Beginning);
    }

    #[test]
    fn records_from_before_the_start_or_already_processed_are_refused() {
        let mut o = PartitionOffsets::new(Start::Offset(100));
        assert!(!o.accept(99), "before the committed offset");
        assert!(o.accept(100));
        assert!(
            o.accept(105),
            "gaps are normal: markers, aborted and compacted records"
        );
        assert!(!o.accept(105), "delivered twice");
        assert!(!o.accept(101));
        assert_eq!(o.next(), 106);
    }

    #[test]
    fn a_commit_takes_the_position_past_markers_but_never_goes_back() {
        let mut o = PartitionOffsets::new(Start::Offset(100));
        assert_eq!(o.to_commit(Some(100)), None, "nothing moved");
        assert!(o.accept(100));
        assert_eq!(o.to_commit(None), Some(101));
        assert_eq!(o.to_commit(Some(103)), Some(103), "past a transaction marker");
        assert_eq!(
            o.to_commit(Some(90)),
            Some(101),
            "a position behind what was processed is ignored"
        );
        o.committed(103);
        assert_eq!(o.to_commit(Some(103)), None);
        assert_eq!(o.to_commit(Some(102)), None, "never backwards");
        assert!(!o.accept(102), "before the committed offset");
        assert!(o.accept(103));
    }

    #[test]
    fn a_partition_never_committed_commits_once_it_moved() {
        let mut o = PartitionOffsets::new(Start::Beginning);
        assert_eq!(o.to_commit(None), None);
        assert_eq!(o.to_commit(Some(0)), Some(0));
        assert!(o.accept(0));
        assert_eq!(o.to_commit(None), Some(1));
    }

    #[test]
    fn a_rewind_goes_back_to_the_last_commit() {
        let mut o = PartitionOffsets::new(Start::Offset(10));
        assert!(o.accept(10));
        assert!(o.accept(11));
        o.committed(12);
        assert!(o.accept(12));
        assert!(o.accept(13));
        assert_eq!(o.rewind(), Start::Offset(12));
        assert!(
            o.accept(12),
            "after the rewind the uncommitted records are processed again"
        );

        let mut fresh = PartitionOffsets::new(Start::Beginning);
        assert!(fresh.accept(0));
        assert_eq!(fresh.rewind(), Start::Beginning);
        assert!(fresh.accept(0));
    }
}
