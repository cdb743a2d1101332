//! What the processing thread shares with the HTTP server and the signal
//! handlers: readiness, the assigned partitions with their stores, metrics,
//! and the shutdown and dump requests.

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::owners::OwnerDirectory;
use crate::restore::RestoreProgress;
use crate::store::PartitionStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

#[derive(Debug, Default)]
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
    status: RwLock<Status>,
    shutdown: AtomicBool,
    dump: AtomicBool,
}

impl Shared {
    pub fn new(settings: Arc<Settings>, owners: OwnerDirectory) -> Self {
        let metrics = Metrics::new(
            &settings.specs,
            &[&settings.input_topic, &settings.repartition_topic],
        );
        Self {
            settings,
            metrics,
            owners,
            status: RwLock::new(Status {
                problem: Some("starting".into()),
                ..Default::default()
            }),
            shutdown: AtomicBool::new(false),
            dump: AtomicBool::new(false),
        }
    }

    pub fn status(&self) -> RwLockReadGuard<'_, Status> {
        self.status.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status_mut(&self) -> RwLockWriteGuard<'_, Status> {
        self.status.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a problem that stops processing (and readiness), or clears it.
    pub fn set_problem(&self, problem: Option<String>) {
        let mut s = self.status_mut();
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

    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    pub fn request_dump(&self) {
        self.dump.store(true, Ordering::SeqCst);
    }

    pub fn take_dump_request(&self) -> bool {
        self.dump.swap(false, Ordering::SeqCst)
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
}
