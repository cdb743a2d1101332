//! Stage 7, status: what the reconcile saw becomes the VideoCounter's status
//! ([`compute`], pure), written with server-side apply when it changed, with
//! the Event the change deserves ([`events`], pure).

pub mod compute;
pub mod events;

pub use compute::{DEGRADED, Observation, PROGRESSING, READY, find};

use crate::crd::VideoCounter;
use crate::error::Result;
use crate::reconcile::build::{MANAGER, selector_string};
use crate::reconcile::context::Context;
use crate::reconcile::outcome::Problem;
use crate::reconcile::roll::Observed;
use events::DegradedEvent;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use videocounter_protocol::WorkerConfig;

/// Window sizes for `kubectl get`, e.g. `1m,5m,10m`.
pub fn windows_summary(config: &WorkerConfig) -> String {
    config
        .windows
        .iter()
        .map(|w| w.size.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Computes the status and writes it if it changed.
pub async fn publish(
    ctx: &Context,
    vc: &VideoCounter,
    namespace: &str,
    config: Option<&WorkerConfig>,
    observed: &Observed,
    problem: Option<&Problem>,
) -> Result<()> {
    let now = Timestamp::now().to_string();
    let previous = vc.status.as_ref();
    let new = compute::compute(&Observation {
        generation: vc.metadata.generation,
        selector: selector_string(&vc.name_any()),
        windows: config.map(windows_summary),
        application_id: Some(vc.application_id()),
        existing_pods: observed.existing_pods,
        plan: observed.plan.as_ref(),
        revision: observed.revision.as_deref(),
        revision_current: observed.revision_current,
        problem,
        pods_failing: observed.pods_failing.as_ref(),
        previous,
        now: &now,
    });
    if previous == Some(&new) {
        return Ok(());
    }
    match events::degraded_event(previous, problem.or(observed.pods_failing.as_ref())) {
        Some(DegradedEvent::Degraded(p)) => {
            tracing::warn!(videocounter = %vc.name_any(), %namespace, reason = %p.reason, message = %p.message, "degraded");
            ctx.publish(vc, EventType::Warning, &p.reason, p.message).await;
        }
        Some(DegradedEvent::Recovered { was }) => {
            let note = format!("no longer degraded ({was})");
            ctx.publish(vc, EventType::Normal, "Recovered", note).await;
        }
        None => {}
    }
    let api: Api<VideoCounter> = ctx.api(namespace);
    let patch = serde_json::json!({
        "apiVersion": "videocounter.io/v1alpha1",
        "kind": "VideoCounter",
        "status": new,
    });
    api.patch_status(
        &vc.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
