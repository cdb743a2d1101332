//! The partition store: plans and their checkpoints, write-backs, restores
//! from changelog records, and the sequence of changelog batches.
use super::*;
use crate::count::emit::{CommitPlan, test_count as wc};
use crate::count::window::test_window;

fn specs() -> Arc<[CountWindow]> {
    vec![test_window(10, 0, 20)].into()
}

#[test]
fn plans_are_applied_with_their_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let res = StoreResources::new(1 << 20, 4 << 20);
    let store = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    assert_eq!(store.checkpoint().unwrap(), None);
    let plan = CommitPlan {
        store_puts: vec![wc(0, "a", 3), wc(10, "a", 1), wc(10, "b", 2)],
        stream_time: Some(15),
        ..Default::default()
    };
    store.apply_plan(&plan, Some(7), true).unwrap();
    assert_eq!(store.checkpoint().unwrap(), Some(7));
    assert_eq!(store.stream_time().unwrap(), Some(15));
    assert_eq!(
        store.counts(&[wc(0, "a", 0).id, wc(0, "zz", 0).id]).unwrap(),
        [3, 0]
    );
    assert_eq!(
        store.windows_in(0, 10..20).unwrap(),
        [wc(10, "a", 1), wc(10, "b", 2)]
    );
    assert_eq!(store.video_counts("a").unwrap(), [wc(0, "a", 3), wc(10, "a", 1)]);

    let plan = CommitPlan {
        store_deletes: vec![(0, i64::MIN..10)],
        stream_time: Some(40),
        ..Default::default()
    };
    store.apply_plan(&plan, Some(9), true).unwrap();
    assert_eq!(
        store.windows_in(0, i64::MIN..i64::MAX).unwrap(),
        [wc(10, "a", 1), wc(10, "b", 2)]
    );
    // Neither RocksDB nor the open windows in memory still count the deleted window.
    assert_eq!(
        store.counts(&[wc(0, "a", 0).id, wc(10, "b", 0).id]).unwrap(),
        [0, 2]
    );
}

/// Checkpoint, position and stream time.
fn numbers(store: &PartitionStore) -> (Option<i64>, Option<i64>, Option<i64>) {
    (
        store.checkpoint().unwrap(),
        store.position().unwrap(),
        store.stream_time().unwrap(),
    )
}

#[test]
fn unwritten_commits_are_read_back_and_a_dropped_store_keeps_an_older_consistent_state() {
    let dir = tempfile::tempdir().unwrap();
    let res = StoreResources::new(1 << 20, 4 << 20);
    let store = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    let first = CommitPlan {
        store_puts: vec![wc(10, "a", 3)],
        stream_time: Some(15),
        position: Some(100),
        ..Default::default()
    };
    // The first stream time is written at once; the next commit, within
    // a second and closing nothing, only in memory.
    store.apply_plan(&first, Some(7), true).unwrap();
    let second = CommitPlan {
        store_puts: vec![wc(10, "a", 5), wc(10, "b", 1)],
        stream_time: Some(16),
        position: Some(120),
        ..Default::default()
    };
    store.apply_plan(&second, Some(9), true).unwrap();
    assert_eq!(
        store.counts(&[wc(10, "a", 0).id, wc(10, "b", 0).id]).unwrap(),
        [5, 1]
    );
    assert_eq!(numbers(&store), (Some(9), Some(120), Some(16)));
    // A killed worker: RocksDB has the first commit whole, and its
    // checkpoint says where the changelog brings it forward from.
    drop(store);
    let store = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    assert_eq!(
        store.counts(&[wc(10, "a", 0).id, wc(10, "b", 0).id]).unwrap(),
        [3, 0]
    );
    assert_eq!(numbers(&store), (Some(7), Some(100), Some(15)));
    // A flush (closing the partition) writes everything.
    store.apply_plan(&second, Some(9), true).unwrap();
    store.flush().unwrap();
    drop(store);
    let store = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    assert_eq!(
        store.counts(&[wc(10, "a", 0).id, wc(10, "b", 0).id]).unwrap(),
        [5, 1]
    );
    assert_eq!(store.checkpoint().unwrap(), Some(9));
}

#[test]
fn the_position_comes_with_the_plan_or_from_the_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let res = StoreResources::new(1 << 20, 4 << 20);
    let store = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    assert_eq!(store.position().unwrap(), None);
    let plan = CommitPlan {
        position: Some(41),
        ..Default::default()
    };
    store.apply_plan(&plan, Some(3), true).unwrap();
    assert_eq!(store.position().unwrap(), Some(41));
    store
        .apply_changelog([(POSITION_KEY, Some(&keys::encode_i64(57)[..]))], 5)
        .unwrap();
    assert_eq!(store.position().unwrap(), Some(57));
    assert_eq!(store.checkpoint().unwrap(), Some(5));
}

#[test]
fn a_foreign_store_is_refused_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let res = StoreResources::new(1 << 20, 4 << 20);
    drop(PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap());
    let err = PartitionStore::open(dir.path(), "cl/1", specs(), &res).unwrap_err();
    assert!(matches!(err, StoreError::WrongIdentity { .. }), "{err}");
    let cancel = AtomicBool::new(false);
    let (_store, wiped) =
        PartitionStore::open_or_rebuild(dir.path(), "cl/1", specs(), &res, &cancel).unwrap();
    assert!(wiped);
}

#[test]
fn a_held_store_reports_its_lock_and_waits() {
    let dir = tempfile::tempdir().unwrap();
    let res = StoreResources::new(1 << 20, 4 << 20);
    let held = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    let err = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let path = dir.path().to_path_buf();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
    });
    let cancel = AtomicBool::new(false);
    let (store, wiped) = PartitionStore::open_or_rebuild(&path, "cl/0", specs(), &res, &cancel).unwrap();
    assert!(!wiped, "a locked store must be waited for, not wiped");
    releaser.join().unwrap();
    drop(store);
}

#[test]
fn changelog_records_restore_counts_and_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let res = StoreResources::new(1 << 20, 4 << 20);
    let store = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    let k1 = keys::window_key(10, 0, "a");
    let k2 = keys::window_key(10, 10, "a");
    let st = keys::encode_i64(12);
    let v = keys::encode_u64(4);
    store
        .apply_changelog(
            [
                (&k1[..], Some(&v[..])),
                (&k2[..], Some(&v[..])),
                (&k1[..], None),
                (STREAM_TIME_KEY, Some(&st[..])),
                (b"unknown".as_slice(), Some(&v[..])),
            ],
            5,
        )
        .unwrap();
    assert_eq!(store.checkpoint().unwrap(), Some(5));
    assert_eq!(store.stream_time().unwrap(), Some(12));
    assert_eq!(store.windows_in(0, i64::MIN..i64::MAX).unwrap(), [wc(10, "a", 4)]);
}

#[test]
fn a_store_restored_from_batches_continues_their_sequence() {
    use crate::count::changelog::for_each_record;
    let dir = tempfile::tempdir().unwrap();
    let res = StoreResources::new(1 << 20, 4 << 20);
    let store = PartitionStore::open(dir.path(), "cl/0", specs(), &res).unwrap();
    let untracked = CommitPlan {
        store_puts: vec![wc(0, "a", 1)],
        ..CommitPlan::default()
    };
    assert_eq!(
        store.changelog_layout(&untracked).batched,
        0,
        "not restored: no batches"
    );
    store.track_batched_windows().unwrap();
    let mut plan = CommitPlan {
        store_puts: vec![wc(0, "a", 3), wc(10, "b", 2)],
        ..CommitPlan::default()
    };
    plan.layout = store.changelog_layout(&plan);
    assert_eq!((plan.layout.seq, plan.layout.batched), (1, 2));
    let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for_each_record(&specs(), &plan, |k, v| {
        records.push((k.to_vec(), v.map(<[u8]>::to_vec)));
        Ok::<_, ()>(())
    })
    .unwrap();
    assert_eq!(records.len(), 1, "one batch record");

    let other = tempfile::tempdir().unwrap();
    let restored = PartitionStore::open(other.path(), "cl/0", specs(), &res).unwrap();
    restored
        .apply_changelog(records.iter().map(|(k, v)| (&k[..], v.as_deref())), 1)
        .unwrap();
    assert_eq!(
        restored.windows_in(0, i64::MIN..i64::MAX).unwrap(),
        [wc(0, "a", 3), wc(10, "b", 2)]
    );
    restored.track_batched_windows().unwrap();
    let next = restored.changelog_layout(&untracked);
    assert_eq!(next.seq, 2, "continues the sequence");
    restored
        .apply_plan(
            &CommitPlan {
                layout: next,
                ..untracked
            },
            Some(2),
            true,
        )
        .unwrap();
    restored.flush().unwrap();
    drop(restored);
    let reopened = PartitionStore::open(other.path(), "cl/0", specs(), &res).unwrap();
    reopened.track_batched_windows().unwrap();
    assert_eq!(reopened.changelog_layout(&plan).seq, 3, "the sequence is stored");
}
