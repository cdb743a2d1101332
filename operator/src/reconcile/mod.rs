//! The reconcile of one VideoCounter: a pipeline of stages, one module each,
//! in the order they run. Pure stages and cores are tested without an API
//! server; the I/O stages are thin.
//!
//! 1. [`dereference`]: read the Secrets the Kafka connection names.
//! 2. [`validate`] (pure): the spec becomes a [`validate::ValidCounter`], the
//!    worker configuration and every input of the children.
//! 3. [`topics`]: create and check the Kafka topics, before any worker starts.
//! 4. [`build`] (pure): the children, from the `ValidCounter` alone.
//! 5. [`apply`]: server-side apply; the StatefulSet only once the topics are
//!    ready; children no longer wanted deleted.
//! 6. [`roll`]: observe the pods, delete the next batch the budget allows.
//! 7. [`status`]: conditions, rollout progress, Events.
//!
//! A stage that is blocked by a problem of the VideoCounter
//! ([`outcome::Halt::Blocked`]) skips the stages that need its result and
//! becomes the `Degraded` condition; while blocked, the StatefulSet is
//! neither created nor changed and no pod is deleted. An API failure ends
//! the reconcile, which is retried. Nothing is remembered between
//! reconciles: every decision comes from what the API server and Kafka
//! report right now.

pub mod apply;
pub mod build;
pub mod context;
pub mod dereference;
pub mod outcome;
pub mod pod_layout;
pub mod requeue;
pub mod roll;
#[cfg(test)]
mod scripted;
pub mod status;
pub mod topics;
pub mod validate;

pub use context::Context;

use crate::crd::VideoCounter;
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use outcome::{Gate, Halt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reconciles one VideoCounter.
pub async fn reconcile(vc: Arc<VideoCounter>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.start_reconcile();
    if vc.metadata.deletion_timestamp.is_some() {
        // Children carry owner references: the garbage collector removes them.
        return Ok(Action::await_change());
    }
    let namespace = vc
        .namespace()
        .ok_or_else(|| Error::MissingNamespace(vc.name_any()))?;
    let started = Instant::now();
    let mut laps = Laps::default();
    let mut gate = Gate::default();

    let secrets = ctx.api::<Secret>(&namespace);
    let credentials = gate.pass(dereference::read_credentials(&secrets, &vc.spec.kafka).await)?;
    let counter = gate.pass(validate::validate(&vc, &ctx.defaults).map_err(Halt::from))?;
    let topics_ready = match (&counter, &credentials) {
        (Some(counter), Some(creds)) => gate
            .pass(topics::ensure(&ctx, &vc, counter, creds).await)?
            .is_some(),
        _ => false,
    };
    laps.topics = laps.next();
    if let Some(counter) = &counter {
        let children = build::children(counter);
        apply::children(&ctx, counter, &namespace, &children, topics_ready).await?;
    }
    laps.apply = laps.next();
    let budget = roll::budget::max_unavailable(&vc.spec.rollout.max_unavailable, vc.spec.replicas);
    let observed = roll::roll(&ctx, &vc, &namespace, budget, topics_ready).await?;
    laps.rollout = laps.next();
    let config = counter.as_ref().map(|c| &c.config);
    status::publish(&ctx, &vc, &namespace, config, &observed, gate.problem()).await?;
    let status_ms = laps.next();
    tracing::debug!(videocounter = %vc.name_any(), %namespace, elapsed_ms = started.elapsed().as_millis() as u64,
        topics_ms = laps.topics, apply_ms = laps.apply, rollout_ms = laps.rollout, status_ms, "reconciled");

    Ok(Action::requeue(requeue::requeue_after(
        gate.problem().is_some(),
        observed.plan.as_ref(),
    )))
}

/// Failed reconciles are retried after a short pause and counted by kind.
pub fn error_policy(vc: Arc<VideoCounter>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(videocounter = %vc.name_any(), error = %error, "reconcile failed");
    ctx.metrics.count_error(error.kind());
    Action::requeue(Duration::from_secs(5))
}

/// Milliseconds spent in each stage of a reconcile, for the debug log.
struct Laps {
    last: Instant,
    topics: u64,
    apply: u64,
    rollout: u64,
}

impl Default for Laps {
    fn default() -> Self {
        Self {
            last: Instant::now(),
            topics: 0,
            apply: 0,
            rollout: 0,
        }
    }
}

impl Laps {
    /// Milliseconds since the previous call (or creation).
    fn next(&mut self) -> u64 {
        let now = Instant::now();
        let ms = now.duration_since(self.last).as_millis() as u64;
        self.last = now;
        ms
    }
}
