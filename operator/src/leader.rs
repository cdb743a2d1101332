//! Leader election with a Lease, so two or more operator replicas are safe:
//! only the holder reconciles. A replica that loses the lease stops at once
//! (the process exits and is restarted as a standby).

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Unique per replica (the pod name).
    pub identity: String,
    /// How long the lease stays valid without renewal: the longest a crashed
    /// leader blocks a standby.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: Client, settings: &LeaseSettings) -> Result<Leadership, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration.as_secs().max(2))
        .with_grace(settings.grace.as_secs().max(1))
        .with_field_manager(format!("videocounter-operator-{}", settings.identity))
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    tracing::info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity,
        "waiting for the leader lease");
    while !*state.borrow_and_update() {
        if state.changed().await.is_err() {
            // The lease task ended: report its error.
            return Err(match task.await {
                Ok(Err(e)) => e,
                _ => LeaseManagerError::InconsistentState("lease task ended".into()),
            });
        }
    }
    tracing::info!(lease = %settings.name, "acquired the leader lease");
    Ok(Leadership { state, task })
}

impl Leadership {
    /// Resolves when the lease is lost (or can no longer be renewed).
    pub async fn lost(&mut self) {
        loop {
            if self.state.changed().await.is_err() || !*self.state.borrow_and_update() {
                return;
            }
        }
    }

    /// Gives the lease up, so a standby takes over without waiting for expiry.
    pub async fn release(self) {
        drop(self.state);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Err(e) => tracing::warn!(error = %e, "lease task failed"),
        }
    }
}
