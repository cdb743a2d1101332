//! What one commit writes for one partition, decided without I/O: output
//! records (every update, or each window once when it closes), changelog
//! records (absolute counts, tombstones of expired windows, stream time) and
//! the matching store writes.
//!
//! Because the decision only depends on the committed stream time and the
//! new one, a partition restored from its changelog emits each closed window
//! exactly once: the windows below the committed close bound were emitted in
//! the transaction that committed that stream time.

use crate::count::changelog_batch::ChangelogLayout;
use crate::count::counts::WindowId;
use crate::count::window::CountWindow;
use std::collections::BTreeMap;
use std::ops::Range;
use videocounter_protocol::EmitMode;

/// A window with its absolute count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCount {
    pub id: WindowId,
    pub count: u64,
}

/// For tests: the count of `video_id`'s window of the first size starting at `start`.
#[cfg(test)]
pub fn test_count(start: i64, video_id: &str, count: u64) -> WindowCount {
    WindowCount {
        id: WindowId {
            window: 0,
            start,
            video_id: video_id.into(),
        },
        count,
    }
}

/// The time ranges one commit moves past, per window size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRanges {
    /// Starts of windows that close with this commit.
    pub closed: Range<i64>,
    /// Starts of windows that expire with this commit.
    pub expired: Range<i64>,
}

pub fn ranges(specs: &[CountWindow], old_st: Option<i64>, new_st: Option<i64>) -> Vec<WindowRanges> {
    specs
        .iter()
        .map(|s| WindowRanges {
            closed: s.newly_closed(old_st, new_st),
            expired: s.newly_expired(old_st, new_st),
        })
        .collect()
}

/// Everything one commit knows about a partition.
#[derive(Debug)]
pub struct CommitInput<'a> {
    pub specs: &'a [CountWindow],
    pub emit: EmitMode,
    pub old_stream_time: Option<i64>,
    pub new_stream_time: Option<i64>,
    /// Absolute counts of the windows changed since the last commit.
    pub updated: Vec<WindowCount>,
    /// Stored windows in the newly closed ranges (needed for `OnWindowClose` only).
    pub closing_in_store: Vec<WindowCount>,
    /// Stored windows in the newly expired ranges.
    pub expiring_in_store: Vec<WindowCount>,
    /// The repartition offset this commit moves the partition to, if it moves.
    pub position: Option<i64>,
}

/// The changelog records of a commit besides its window counts (those are
/// the store puts: see [`CommitPlan::changelog_puts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangelogChange {
    Delete(WindowId),
    StreamTime(i64),
    Position(i64),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommitPlan {
    /// `OnUpdate`: every store put is an output too (not copied: a commit
    /// can update 30,000 windows).
    pub emit_puts: bool,
    /// The outputs besides those: `OnUpdate`, the updated windows that
    /// expire with this commit; `OnWindowClose`, every output.
    pub other_outputs: Vec<WindowCount>,
    pub changelog: Vec<ChangelogChange>,
    pub store_puts: Vec<WindowCount>,
    /// `(window index, starts)` ranges to delete from the store.
    pub store_deletes: Vec<(usize, Range<i64>)>,
    pub stream_time: Option<i64>,
    pub position: Option<i64>,
    /// Which counts go into the changelog's batch record (set from the
    /// store's state before sending; see `changelog_batch`).
    pub layout: ChangelogLayout,
}

impl CommitPlan {
    /// The window counts this commit writes to the output topics.
    pub fn outputs(&self) -> impl Iterator<Item = &WindowCount> {
        let puts: &[WindowCount] = if self.emit_puts { &self.store_puts } else { &[] };
        puts.iter().chain(&self.other_outputs)
    }

    /// The window counts this commit writes to the changelog.
    pub fn changelog_puts(&self) -> impl ExactSizeIterator<Item = &WindowCount> {
        self.store_puts.iter()
    }

    /// The windows this commit deletes from the changelog.
    pub fn changelog_deletes(&self) -> impl Iterator<Item = &WindowId> {
        self.changelog.iter().filter_map(|c| match c {
            ChangelogChange::Delete(id) => Some(id),
            _ => None,
        })
    }
}

pub fn plan_commit(input: CommitInput<'_>) -> CommitPlan {
    let ranges = ranges(input.specs, input.old_stream_time, input.new_stream_time);
    let expired = |id: &WindowId| ranges[id.window].expired.contains(&id.start);
    let closed = |id: &WindowId| ranges[id.window].closed.contains(&id.start);
    let mut plan = CommitPlan::default();

    match input.emit {
        EmitMode::OnUpdate => plan.emit_puts = true,
        EmitMode::OnWindowClose => {
            let mut closing: BTreeMap<WindowId, u64> = input
                .closing_in_store
                .into_iter()
                .filter(|w| closed(&w.id))
                .map(|w| (w.id, w.count))
                .collect();
            for w in input.updated.iter().filter(|w| closed(&w.id)) {
                closing.insert(w.id.clone(), w.count);
            }
            plan.other_outputs
                .extend(closing.into_iter().map(|(id, count)| WindowCount { id, count }));
        }
    }

    let mut tombstones: BTreeMap<WindowId, ()> = BTreeMap::new();
    for w in input.expiring_in_store.into_iter().filter(|w| expired(&w.id)) {
        tombstones.insert(w.id, ());
    }
    for w in input.updated {
        if !expired(&w.id) {
            plan.store_puts.push(w);
            continue;
        }
        tombstones.insert(w.id.clone(), ());
        if input.emit == EmitMode::OnUpdate {
            plan.other_outputs.push(w);
        }
    }
    plan.changelog
        .extend(tombstones.into_keys().map(ChangelogChange::Delete));
    for (window, r) in ranges.iter().enumerate() {
        if input.specs[window].any_start_in(&r.expired) {
            plan.store_deletes.push((window, r.expired.clone()));
        }
    }
    if input.new_stream_time != input.old_stream_time
        && let Some(st) = input.new_stream_time
    {
        plan.changelog.push(ChangelogChange::StreamTime(st));
        plan.stream_time = Some(st);
    }
    // Last, so a changelog read up to this record holds every count it covers.
    if let Some(position) = input.position {
        plan.changelog.push(ChangelogChange::Position(position));
        plan.position = Some(position);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count::window::test_window;
    use test_count as wc;

    fn specs() -> Vec<CountWindow> {
        vec![test_window(10, 2, 20)]
    }

    fn outputs(plan: &CommitPlan) -> Vec<WindowCount> {
        plan.outputs().cloned().collect()
    }

    fn input<'a>(
        specs: &'a [CountWindow],
        emit: EmitMode,
        old: Option<i64>,
        new: Option<i64>,
    ) -> CommitInput<'a> {
        CommitInput {
            specs,
            emit,
            old_stream_time: old,
            new_stream_time: new,
            updated: vec![],
            closing_in_store: vec![],
            expiring_in_store: vec![],
            position: None,
        }
    }

    #[test]
    fn the_position_is_written_last_even_when_no_count_changed() {
        let specs = specs();
        let mut i = input(&specs, EmitMode::OnUpdate, Some(26), Some(26));
        i.position = Some(812);
        let plan = plan_commit(i);
        assert_eq!(plan.outputs().count(), 0);
        assert_eq!(plan.changelog, [ChangelogChange::Position(812)]);
        assert_eq!(plan.position, Some(812));

        let mut i = input(&specs, EmitMode::OnUpdate, Some(26), Some(29));
        i.updated = vec![wc(20, "a", 7)];
        i.position = Some(813);
        let plan = plan_commit(i);
        assert_eq!(plan.changelog.last(), Some(&ChangelogChange::Position(813)));
    }

    #[test]
    fn on_update_emits_every_changed_window_with_its_absolute_count() {
        let specs = specs();
        let mut i = input(&specs, EmitMode::OnUpdate, Some(26), Some(29));
        i.updated = vec![wc(20, "a", 7), wc(30, "a", 1)];
        let plan = plan_commit(i);
        assert_eq!(outputs(&plan), [wc(20, "a", 7), wc(30, "a", 1)]);
        assert_eq!(plan.changelog, [ChangelogChange::StreamTime(29)]);
        assert_eq!(plan.store_puts, [wc(20, "a", 7), wc(30, "a", 1)]);
        assert_eq!(plan.stream_time, Some(29));
        // The expiry bound moved from -5 to -2: no window starts there, nothing to delete.
        assert!(plan.store_deletes.is_empty());
    }

    #[test]
    fn on_window_close_emits_each_window_once_when_stream_time_passes_end_plus_grace() {
        let specs = specs();
        // Stream time 11: window [0,10) closes at 12, nothing to emit.
        let mut i = input(&specs, EmitMode::OnWindowClose, None, Some(11));
        i.updated = vec![wc(0, "a", 2)];
        assert!(outputs(&plan_commit(i)).is_empty());

        // Stream time 12 closes [0,10): emitted from the store and from this commit's updates.
        let mut i = input(&specs, EmitMode::OnWindowClose, Some(11), Some(12));
        i.closing_in_store = vec![wc(0, "a", 2), wc(0, "b", 4)];
        i.updated = vec![wc(0, "b", 5), wc(10, "c", 1)];
        let plan = plan_commit(i);
        assert_eq!(outputs(&plan), [wc(0, "a", 2), wc(0, "b", 5)]);

        // The next commit does not emit them again.
        let mut i = input(&specs, EmitMode::OnWindowClose, Some(12), Some(13));
        i.closing_in_store = vec![wc(0, "a", 2)];
        assert!(outputs(&plan_commit(i)).is_empty());
    }

    #[test]
    fn expired_windows_are_tombstoned_and_deleted() {
        let specs = specs();
        // Window [0,10) expires when stream time reaches 10 + 2 + 20 = 32.
        let mut i = input(&specs, EmitMode::OnUpdate, Some(31), Some(32));
        i.expiring_in_store = vec![wc(0, "a", 3), wc(0, "b", 1)];
        i.updated = vec![wc(30, "a", 1)];
        let plan = plan_commit(i);
        assert_eq!(
            plan.changelog_puts().cloned().collect::<Vec<_>>(),
            [wc(30, "a", 1)]
        );
        assert_eq!(
            plan.changelog,
            [
                ChangelogChange::Delete(wc(0, "a", 0).id),
                ChangelogChange::Delete(wc(0, "b", 0).id),
                ChangelogChange::StreamTime(32)
            ]
        );
        assert_eq!(plan.store_deletes, [(0, 0..1)]);
    }

    #[test]
    fn a_window_created_and_expired_in_one_commit_is_emitted_but_not_kept() {
        let specs = specs();
        let mut i = input(&specs, EmitMode::OnWindowClose, None, Some(100));
        i.updated = vec![wc(0, "a", 1), wc(100, "a", 1)];
        let plan = plan_commit(i);
        assert_eq!(outputs(&plan), [wc(0, "a", 1)]);
        assert_eq!(plan.store_puts, [wc(100, "a", 1)]);
        assert!(
            plan.changelog
                .contains(&ChangelogChange::Delete(wc(0, "a", 0).id))
        );
    }

    #[test]
    fn on_update_emits_a_window_that_expires_in_the_same_commit_but_does_not_keep_it() {
        let specs = specs();
        // Stream time 40 expires [0,10) (10 + 2 + 20 = 32); [30,40) stays open.
        let mut i = input(&specs, EmitMode::OnUpdate, Some(31), Some(40));
        i.updated = vec![wc(0, "a", 4), wc(30, "a", 2)];
        let plan = plan_commit(i);
        let mut emitted = outputs(&plan);
        emitted.sort_by_key(|w| w.id.start);
        assert_eq!(emitted, [wc(0, "a", 4), wc(30, "a", 2)]);
        assert_eq!(plan.store_puts, [wc(30, "a", 2)]);
        assert_eq!(
            plan.changelog_puts().cloned().collect::<Vec<_>>(),
            [wc(30, "a", 2)]
        );
        assert!(
            plan.changelog
                .contains(&ChangelogChange::Delete(wc(0, "a", 0).id))
        );
    }

    #[test]
    fn nothing_changes_when_stream_time_stands_still() {
        let specs = specs();
        let plan = plan_commit(input(&specs, EmitMode::OnWindowClose, Some(50), Some(50)));
        assert_eq!(plan, CommitPlan::default());
    }
}
