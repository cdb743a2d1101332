//! The batch layout against a model of a compacted changelog: commits (some
//! aborted), compactions and changes of owner at random moments, and after
//! each compaction the changelog read in order must give every window's
//! last count.

use super::*;
use crate::count::changelog::{for_each_record, for_each_restored};
use crate::count::emit::{ChangelogChange, CommitPlan};
use crate::count::window::{CountWindow, test_window};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

type Log = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn specs() -> Vec<CountWindow> {
    vec![test_window(60_000, 0, 60_000), test_window(300_000, 0, 300_000)]
}

fn id(rng: &mut StdRng, videos: usize) -> WindowId {
    WindowId {
        window: rng.random_range(0..2),
        start: rng.random_range(0..4) * 300_000,
        video_id: format!("video-{}", rng.random_range(0..videos)).into(),
    }
}

/// Kafka's compaction: of each key only the newest record stays, where it was.
fn compact(log: &mut Log) {
    let mut newest: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, (k, _)) in log.iter().enumerate() {
        newest.insert(k.clone(), i);
    }
    let mut i = 0;
    log.retain(|(k, _)| {
        i += 1;
        newest[k] == i - 1
    });
}

/// A restore: the changelog read in order into a store.
fn restore(log: &Log) -> (BTreeMap<Vec<u8>, Vec<u8>>, u64) {
    let mut store = BTreeMap::new();
    let mut seq = 0;
    for (k, v) in log {
        let s = for_each_restored(k, v.as_deref(), |k, v| match v {
            Some(v) => {
                store.insert(k.to_vec(), v.to_vec());
            }
            None => {
                store.remove(k);
            }
        });
        seq = s.unwrap_or(seq);
    }
    (store, seq)
}

fn windows_of(store: &BTreeMap<Vec<u8>, Vec<u8>>, specs: &[CountWindow]) -> Vec<WindowCount> {
    store
        .iter()
        .filter_map(|(k, v)| {
            let k = keys::parse_window_key(k)?;
            Some(WindowCount {
                id: WindowId {
                    window: specs.iter().position(|s| s.size_ms == k.size_ms)?,
                    start: k.start,
                    video_id: k.video_id.into(),
                },
                count: keys::decode_u64(v)?,
            })
        })
        .collect()
}

#[test]
fn a_compacted_changelog_keeps_every_last_count_across_aborts_and_owners() {
    let specs = specs();
    for seed in 0..20 {
        let mut rng = StdRng::seed_from_u64(seed);
        let videos = rng.random_range(5..400);
        let mut truth: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut log: Log = Vec::new();
        let mut state = BatchedWindows::restored(0, Some(Vec::new()));
        let (mut batches, mut singles, mut puts_total) = (0, 0, 0);
        for step in 0..600 {
            let mut puts: BTreeMap<WindowId, u64> = BTreeMap::new();
            for _ in 0..rng.random_range(0..3 * videos) {
                let id = id(&mut rng, videos);
                let key = keys::window_key(specs[id.window].size_ms, id.start, &id.video_id);
                let base = truth.get(&key).and_then(|v| keys::decode_u64(v)).unwrap_or(0);
                puts.insert(id, base + rng.random_range(1..5));
            }
            let deletes: Vec<WindowId> = (0..rng.random_range(0..3))
                .map(|_| id(&mut rng, videos))
                .filter(|id| !puts.contains_key(id))
                .collect();
            let store_puts: Vec<WindowCount> = puts
                .into_iter()
                .map(|(id, count)| WindowCount { id, count })
                .collect();
            let mut plan = CommitPlan {
                changelog: deletes.iter().cloned().map(ChangelogChange::Delete).collect(),
                store_puts,
                ..CommitPlan::default()
            };
            plan.layout = state.layout(plan.changelog_puts(), plan.changelog_deletes());
            let mut records: Log = Vec::new();
            for_each_record(&specs, &plan, |k, v| {
                records.push((k.to_vec(), v.map(<[u8]>::to_vec)));
                Ok::<_, ()>(())
            })
            .unwrap();
            if let Some((_, Some(value))) = records.iter().find(|(k, _)| keys::is_batch_key(k)) {
                assert_eq!(
                    value.len(),
                    plan.layout.batch_bytes,
                    "the batch's size is known up front"
                );
            }
            puts_total += plan.store_puts.len();
            if rng.random_bool(0.1) {
                continue; // aborted: nothing of it is read, nothing changes
            }
            batches += records.iter().filter(|(k, _)| keys::is_batch_key(k)).count();
            singles += records.len();
            log.extend(records);
            for w in &plan.store_puts {
                let key = keys::window_key(specs[w.id.window].size_ms, w.id.start, &w.id.video_id);
                truth.insert(key, keys::encode_u64(w.count).to_vec());
            }
            for id in &deletes {
                truth.remove(&keys::window_key(
                    specs[id.window].size_ms,
                    id.start,
                    &id.video_id,
                ));
            }
            state.committed(&plan.layout, plan.changelog_puts(), plan.changelog_deletes());

            if rng.random_bool(0.2) {
                compact(&mut log);
                assert_eq!(
                    restore(&log).0,
                    truth,
                    "seed {seed}, step {step}: a count was lost"
                );
            }
            if rng.random_bool(0.03) {
                // A new owner: restored from the changelog, sometimes with
                // too many windows to track (then it writes no batches).
                let (store, seq) = restore(&log);
                assert_eq!(store, truth, "seed {seed}, step {step}");
                let windows = rng.random_bool(0.8).then(|| windows_of(&store, &specs));
                state = BatchedWindows::restored(seq, windows);
            }
        }
        compact(&mut log);
        assert_eq!(restore(&log).0, truth, "seed {seed}");
        assert!(batches > 100, "seed {seed}: only {batches} batches");
        assert!(
            singles - batches < puts_total / 2,
            "seed {seed}: {} records of their own for {puts_total} counts",
            singles - batches
        );
    }
}

#[test]
fn counts_beyond_the_byte_limit_get_records_of_their_own() {
    let state = BatchedWindows::restored(7, Some(Vec::new()));
    let long = "v".repeat(1_000);
    let puts: Vec<WindowCount> = (0..1_000)
        .map(|i| WindowCount {
            id: WindowId {
                window: 0,
                start: 0,
                video_id: format!("{long}{i}").into(),
            },
            count: 1,
        })
        .collect();
    let layout = state.layout(puts.iter(), std::iter::empty());
    assert_eq!(layout.seq, 8);
    assert!(layout.batched > 400 && layout.batched < 600, "{}", layout.batched);
    let off = BatchedWindows::restored(7, None);
    assert_eq!(
        off.layout(puts.iter(), std::iter::empty()),
        ChangelogLayout::default()
    );
}
