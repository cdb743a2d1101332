//! When a partition's store writes the committed counts it holds in memory
//! back to RocksDB (see `PartitionStore::apply_plan`).

use std::time::Duration;

/// How long committed counts stay unwritten to RocksDB, normally: what a
/// killed worker's restore reads again from the changelog.
const WRITE_BACK_EVERY: Duration = Duration::from_secs(1);
/// One commit writes back at most one store on the timer, so the stores of
/// a worker, all opened together, do not come due in the same commit and
/// stall it (six stores of 10,000 videos: ~100 ms); a store waits its turn
/// up to this long.
const WRITE_BACK_OVERDUE: Duration = Duration::from_secs(5);

/// Whether a commit writes a store back to RocksDB: when it must (expired
/// windows to delete, windows to forget), or on the timer, in its turn or
/// once overdue.
pub fn write_back_due(must: bool, since_last: Duration, my_turn: bool) -> bool {
    must || since_last >= WRITE_BACK_OVERDUE || (my_turn && since_last >= WRITE_BACK_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_write_back_on_the_timer_in_turn_unless_overdue_or_they_must() {
        let (none, due, overdue) = (Duration::ZERO, WRITE_BACK_EVERY, WRITE_BACK_OVERDUE);
        assert!(!write_back_due(false, none, true));
        assert!(write_back_due(false, due, true));
        assert!(!write_back_due(false, due, false), "another store's turn");
        assert!(write_back_due(false, overdue, false));
        assert!(write_back_due(true, none, false));
    }
}
