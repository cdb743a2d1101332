//! Stage 6, roll: observe the StatefulSet and its pods, plan the next step of
//! the rollout ([`plan`], pure, within the [`budget`]), delete the batch it
//! allows, and record a finished rollout. Pods that cannot start are read
//! here too ([`pod_health`], pure), for the status.

pub mod budget;
pub mod plan;
pub mod pod_health;

use crate::crd::VideoCounter;
use crate::error::Result;
use crate::reconcile::apply::ignore_gone;
use crate::reconcile::build::{names, selector_string};
use crate::reconcile::context::Context;
use crate::reconcile::outcome::Problem;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use plan::{ObservedPod, RolloutPlan, RolloutTarget};

/// What the roll stage saw (and did).
#[derive(Debug, Default)]
pub struct Observed {
    /// `None` before the StatefulSet exists and reports a revision.
    pub plan: Option<RolloutPlan>,
    pub revision: Option<String>,
    /// The StatefulSet controller has observed the latest template.
    pub revision_current: bool,
    /// Pods that exist and are not terminating.
    pub existing_pods: i32,
    /// Wanted pods that cannot start, as one problem.
    pub pods_failing: Option<Problem>,
}

/// Observes the pods and, when `may_delete`, deletes the next batch of
/// outdated ones the budget allows.
pub async fn roll(
    ctx: &Context,
    vc: &VideoCounter,
    namespace: &str,
    max_unavailable: i32,
    may_delete: bool,
) -> Result<Observed> {
    let name = vc.name_any();
    let stateful_sets: Api<StatefulSet> = ctx.api(namespace);
    let pods_api: Api<Pod> = ctx.api(namespace);
    let Some(sts) = stateful_sets.get_opt(&names::stateful_set(&name)).await? else {
        return Ok(Observed::default());
    };
    let sts_status = sts.status.clone().unwrap_or_default();
    let Some(revision) = sts_status.update_revision.clone() else {
        return Ok(Observed::default());
    };
    // A template change is visible in updateRevision only once the StatefulSet
    // controller has observed the new generation; until then, look but do not touch.
    let current =
        sts_status.observed_generation.is_some() && sts_status.observed_generation == sts.metadata.generation;
    // A fresh list, not a cache: a stale view could delete more than the budget.
    let pods = pods_api
        .list(&ListParams::default().labels(&selector_string(&name)))
        .await?
        .items;
    let observed: Vec<ObservedPod> = pods
        .iter()
        .filter_map(|p| ObservedPod::from_pod(sts.metadata.name.as_deref().unwrap_or(&name), p))
        .collect();
    let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let target = RolloutTarget {
        stateful_set: &name,
        replicas,
        update_revision: &revision,
        max_unavailable,
    };
    let plan = plan::plan(&observed, &target);
    let pods_failing = pod_health::summarize(&pod_health::troubles(&name, replicas, &pods));
    if may_delete && current && !plan.delete.is_empty() {
        for pod_name in &plan.delete {
            if let Some(pod) = pods.iter().find(|p| p.metadata.name.as_deref() == Some(pod_name)) {
                delete_pod(&pods_api, pod).await?;
                ctx.metrics.pods_deleted.inc();
            }
        }
        let note = format!(
            "replacing {} to move them to revision {revision}; {}/{} pods updated, at most {} unavailable",
            plan.delete.join(", "),
            plan.updated_ready,
            plan.total,
            plan.max_unavailable
        );
        tracing::info!(videocounter = %name, %namespace, pods = ?plan.delete, "rolling restart batch");
        ctx.publish(vc, EventType::Normal, "RollingRestart", note).await;
    }
    if current && plan.is_settled() && sts_status.current_revision.as_deref() != Some(revision.as_str()) {
        complete_rollout(&stateful_sets, &name, &revision).await?;
    }
    Ok(Observed {
        existing_pods: observed.iter().filter(|p| !p.terminating).count() as i32,
        plan: Some(plan),
        revision: Some(revision),
        revision_current: current,
        pods_failing,
    })
}

/// Deletes a pod, but only the incarnation observed (its uid): a pod already
/// replaced under the same name is left alone. A plain DELETE: the PDB limits
/// evictions by others, the planner limits these.
async fn delete_pod(api: &Api<Pod>, pod: &Pod) -> Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    ignore_gone(api.delete(&pod.name_any(), &params).await.map(|_| ()))
}

/// Records a finished rollout in the StatefulSet's status, as the StatefulSet
/// controller does itself for `RollingUpdate` (and never for `OnDelete`): every
/// pod runs `revision`, so it is the current one. Without this,
/// `status.currentRevision` would name the first revision forever and
/// `currentReplicas` count 0 after the first rollout. (`currentReplicas` is
/// left to the StatefulSet controller, which recounts it from the pods on its
/// next sync: written here it could exceed a `status.replicas` that lags.)
async fn complete_rollout(stateful_sets: &Api<StatefulSet>, name: &str, revision: &str) -> Result<()> {
    let patch = serde_json::json!({ "status": {"currentRevision": revision} });
    stateful_sets
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::debug!(statefulset = %name, %revision, "rollout complete: currentRevision updated");
    Ok(())
}
