//! What the processing thread shares with the HTTP server and the signal
//! handlers: readiness, the assigned partitions with their stores, metrics,
//! and the shutdown and dump requests.

use crate::config::Settings;
use crate::count::restore::RestoreProgress;
use crate::count::store::PartitionStore;
use crate::runtime::metrics::Metrics;
use crate::runtime::owners::OwnerDirectory;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockWriteGuard};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Restoring,
    Active,
    Failed(String),
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Restoring => "restoring",
            Phase::Active => "active",
            Phase::Failed(_) => "failed",
        }
    }
}

/// One assigned counting partition as seen from outside the processing thread.
#[derive(Debug, Clone)]
pub struct PartitionView {
    pub phase: Phase,
    pub store: Option<Arc<PartitionStore>>,
    pub restore: Arc<RestoreProgress>,
}

#[derive(Debug, Default, Clone)]
pub struct Status {
    /// Why the worker cannot process at all (Kafka unreachable, topic mismatch).
    pub problem: Option<String>,
    /// Whether the consumer has received its first assignment.
    pub joined: bool,
    pub inputs: BTreeSet<i32>,
    pub partitions: BTreeMap<i32, PartitionView>,
}

impl Status {
    /// Ready when running, in the group, and every assigned partition is restored.
    pub fn readiness(&self) -> Result<(), String> {
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        if !self.joined {
            return Err("waiting for a partition assignment from the consumer group".into());
        }
        let pending: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, v)| v.phase != Phase::Active)
            .map(|(p, v)| format!("{p} ({})", v.phase.name()))
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("partitions not restored yet: {}", pending.join(", ")))
        }
    }
}

pub struct Shared {
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub owners: OwnerDirectory,
    /// One per consumer session of the process.
    slots: Vec<RwLock<Status>>,
    shutdown: AtomicBool,
    /// A session ended the process (fenced by another instance): exit non-zero.
    failed: AtomicBool,
    /// Dumps asked for so far, and per session the last one it did.
    dumps: AtomicU64,
    dumps_done: Vec<AtomicU64>,
}

impl Status {
    /// The process's status from its sessions': ready when all are.
    fn merge(slots: &[Status]) -> Status {
        let mut out = Status {
            joined: slots.iter().all(|s| s.joined),
            problem: slots.iter().find_map(|s| s.problem.clone()),
            ..Default::default()
        };
        for s in slots {
            out.inputs.extend(&s.inputs);
            out.partitions
                .extend(s.partitions.iter().map(|(p, v)| (*p, v.clone())));
        }
        out
    }
}

impl Shared {
    pub fn new(settings: Arc<Settings>, owners: OwnerDirectory) -> Self {
        let metrics = Metrics::new(
            &settings.specs,
            &[&settings.input_topic, &settings.repartition_topic],
        );
        Self {
            slots: (0..settings.threads.max(1))
                .map(|_| {
                    RwLock::new(Status {
                        problem: Some("starting".into()),
                        ..Default::default()
                    })
                })
                .collect(),
            dumps_done: (0..settings.threads.max(1)).map(|_| AtomicU64::new(0)).collect(),
            settings,
            metrics,
            owners,
            shutdown: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            dumps: AtomicU64::new(0),
        }
    }

    /// The status of the whole process.
    pub fn status(&self) -> Status {
        let slots: Vec<Status> = self
            .slots
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        Status::merge(&slots)
    }

    /// The status of consumer session `slot`.
    pub fn slot_mut(&self, slot: usize) -> RwLockWriteGuard<'_, Status> {
        self.slots[slot].write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a problem that stops a session's processing (and readiness), or clears it.
    pub fn set_problem(&self, slot: usize, problem: Option<String>) {
        let mut s = self.slot_mut(slot);
        if problem.is_some() {
            s.joined = false;
            s.inputs.clear();
            s.partitions.clear();
        }
        s.problem = problem;
        drop(s);
        self.refresh_ready();
    }

    pub fn refresh_ready(&self) {
        let ready = self.status().readiness().is_ok();
        self.metrics.ready.set(i64::from(ready));
    }

    /// Stops every session and makes the process exit with a failure.
    pub fn fail_process(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.request_shutdown();
    }

    pub fn process_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    pub fn request_dump(&self) {
        self.dumps.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether session `slot` has a dump to log.
    pub fn take_dump_request(&self, slot: usize) -> bool {
        let asked = self.dumps.load(Ordering::SeqCst);
        self.dumps_done[slot].swap(asked, Ordering::SeqCst) != asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(phase: Phase) -> PartitionView {
        PartitionView {
            phase,
            store: None,
            restore: Arc::default(),
        }
    }

    #[test]
    fn ready_only_when_joined_and_every_partition_is_restored() {
        let mut s = Status::default();
        assert!(s.readiness().is_err());
        s.joined = true;
        assert_eq!(s.readiness(), Ok(()));
        s.partitions.insert(0, view(Phase::Active));
        s.partitions.insert(3, view(Phase::Restoring));
        assert_eq!(
            s.readiness(),
            Err("partitions not restored yet: 3 (restoring)".into())
        );
        s.partitions.insert(3, view(Phase::Active));
        assert_eq!(s.readiness(), Ok(()));
        s.problem = Some("topic x has 3 partitions".into());
        assert_eq!(s.readiness(), Err("topic x has 3 partitions".into()));
    }

    #[test]
    fn a_process_is_ready_when_every_session_is() {
        let mut a = Status {
            joined: true,
            ..Default::default()
        };
        a.inputs.insert(0);
        a.partitions.insert(1, view(Phase::Active));
        let mut b = Status::default();
        b.partitions.insert(2, view(Phase::Restoring));
        let merged = Status::merge(&[a.clone(), b.clone()]);
        assert!(merged.readiness().is_err(), "one session has not joined yet");
        b.joined = true;
        let merged = Status::merge(&[a.clone(), b.clone()]);
        assert_eq!(
            merged.readiness(),
            Err("partitions not restored yet: 2 (restoring)".into())
        );
        assert_eq!(merged.partitions.keys().copied().collect::<Vec<_>>(), [1, 2]);
        b.partitions.insert(2, view(Phase::Active));
        assert_eq!(Status::merge(&[a, b]).readiness(), Ok(()));
    }
}
