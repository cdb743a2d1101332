//! One counting partition owned by this worker: restoring, active (its store
//! and its in-memory counts), or failed and waiting to retry its restore.

use crate::count::counts::{PartitionCounts, WindowId};
use crate::count::emit::{self, CommitInput, CommitPlan, WindowCount};
use crate::count::restore::{RestoreJob, RestoreProgress};
use crate::count::store::{PartitionStore, StoreError};
use crate::count::window::CountWindow;
use crate::engine::offsets::{PartitionOffsets, RestoredStart, restored_start};
use std::sync::Arc;
use std::time::Instant;
use videocounter_protocol::EmitMode;

pub enum Task {
    /// `group_offset` is the group's stable committed offset of the partition,
    /// read when it was assigned: where it resumes if its store recorded no position.
    Restoring {
        job: RestoreJob,
        group_offset: Option<i64>,
    },
    Active(ActiveTask),
    Failed {
        error: String,
        retry_at: Instant,
        progress: Arc<RestoreProgress>,
        group_offset: Option<i64>,
    },
}

impl Task {
    pub fn progress(&self) -> Arc<RestoreProgress> {
        match self {
            Task::Restoring { job, .. } => job.progress.clone(),
            Task::Active(t) => t.progress.clone(),
            Task::Failed { progress, .. } => progress.clone(),
        }
    }

    /// Releases the partition: stops a restore, or persists the store's memtables.
    pub fn close(self, partition: i32) {
        match self {
            Task::Restoring { job, .. } => job.cancel(),
            Task::Active(t) => {
                if let Err(e) = t.store.flush() {
                    tracing::warn!(partition, error = %e, "flushing the store on close failed; the next restore reads more changelog");
                }
            }
            Task::Failed { .. } => {}
        }
    }
}

pub struct ActiveTask {
    pub store: Arc<PartitionStore>,
    pub counts: PartitionCounts,
    pub progress: Arc<RestoreProgress>,
    /// The repartition offsets of this partition: its own, committed with its counts.
    pub offsets: PartitionOffsets,
}

impl ActiveTask {
    /// A restored store, resuming at the position it recorded (else the
    /// group's committed offset, else the beginning).
    pub fn new(
        store: PartitionStore,
        specs: Arc<[CountWindow]>,
        progress: Arc<RestoreProgress>,
        group_offset: Option<i64>,
    ) -> Result<(Self, RestoredStart), StoreError> {
        let stream_time = store.stream_time()?;
        let start = restored_start(store.position()?, group_offset);
        let task = Self {
            store: Arc::new(store),
            counts: PartitionCounts::new(specs, stream_time),
            progress,
            offsets: PartitionOffsets::new(start.start),
        };
        Ok((task, start))
    }

    /// Takes the counts since the last commit, for the commit being prepared.
    pub fn take_pending(&mut self) -> PendingCounts {
        PendingCounts {
            deltas: self.counts.take_deltas(),
            old_stream_time: self.counts.committed_stream_time(),
            new_stream_time: self.counts.stream_time(),
        }
    }
}

/// What a partition counted since its last commit.
pub struct PendingCounts {
    pub deltas: Vec<(WindowId, u64)>,
    pub old_stream_time: Option<i64>,
    pub new_stream_time: Option<i64>,
}

impl PendingCounts {
    /// Reads what the counts build on from the store and decides what this
    /// commit writes for the partition, including the repartition offset it
    /// moves to (`position`). Runs on the commit thread.
    pub fn plan(
        self,
        store: &PartitionStore,
        specs: &[CountWindow],
        emit: EmitMode,
        position: Option<i64>,
    ) -> Result<CommitPlan, StoreError> {
        let (ids, deltas): (Vec<WindowId>, Vec<u64>) = self.deltas.into_iter().unzip();
        let bases = store.counts(&ids)?;
        let updated: Vec<WindowCount> = ids
            .into_iter()
            .zip(bases.into_iter().zip(deltas))
            .map(|(id, (base, delta))| WindowCount {
                id,
                count: base + delta,
            })
            .collect();
        let (old, new) = (self.old_stream_time, self.new_stream_time);
        let mut closing_in_store = Vec::new();
        let mut expiring_in_store = Vec::new();
        for (window, r) in emit::ranges(specs, old, new).into_iter().enumerate() {
            let spec = &specs[window];
            if emit == EmitMode::OnWindowClose && spec.any_start_in(&r.closed) {
                closing_in_store.extend(store.windows_in(window, r.closed)?);
            }
            if spec.any_start_in(&r.expired) {
                expiring_in_store.extend(store.windows_in(window, r.expired)?);
            }
        }
        Ok(emit::plan_commit(CommitInput {
            specs,
            emit,
            old_stream_time: old,
            new_stream_time: new,
            updated,
            closing_in_store,
            expiring_in_store,
            position,
        }))
    }
}
