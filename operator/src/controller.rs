//! Reconciliation of one VideoCounter, in stages:
//! render and validate (pure) → Kafka credentials and topics → build the
//! children (pure) and apply them with server-side apply → prune children no
//! longer wanted → roll pods onto the current revision → publish the status.
//!
//! Nothing is remembered between reconciles: every decision comes from what
//! the API server and Kafka report right now.

use crate::apply::{apply, delete_pod, prune, read_credentials};
use crate::builders::{self, BuildSettings, Children, INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER, names};
use crate::crd::VideoCounter;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::pod_health;
use crate::render;
use crate::rollout::{self, ObservedPod, RolloutPlan, RolloutTarget};
use crate::status::{self, DEGRADED, Observation, Problem};
use crate::topics::{KafkaCredentials, TopicAdmin};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use videocounter_protocol::WorkerConfig;
use videocounter_protocol::topics::topic_plan;

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    /// Namespace to manage, or all when `None`.
    pub namespace: Option<String>,
    pub settings: BuildSettings,
    pub reporter: Reporter,
    pub metrics: Metrics,
    /// Admin clients by connection (a cache: each holds broker connections).
    admins: Mutex<HashMap<String, TopicAdmin>>,
}

impl Context {
    pub fn new(client: Client, namespace: Option<String>, settings: BuildSettings, metrics: Metrics) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            reporter,
            client,
            namespace,
            settings,
            metrics,
            admins: Mutex::new(HashMap::new()),
        }
    }

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn admin_for(&self, config: &WorkerConfig, creds: &KafkaCredentials) -> Result<TopicAdmin, Problem> {
        let key = format!("{:?}|{:?}", config.kafka, creds);
        let mut admins = self.admins.lock().expect("admin cache lock");
        if let Some(admin) = admins.get(&key) {
            return Ok(admin.clone());
        }
        let admin =
            TopicAdmin::new(&config.kafka, creds).map_err(|e| Problem::new(e.reason(), e.to_string()))?;
        if admins.len() >= 32 {
            admins.clear();
        }
        admins.insert(key, admin.clone());
        Ok(admin)
    }

    async fn publish(&self, vc: &VideoCounter, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(within_note_limit(note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        // A recorder per event: kube's Recorder folds events of the same reason
        // into one series that keeps the first note, which would hide which
        // pods later rollout batches replaced. Each call here is a new fact
        // (callers publish on changes only), so each gets its own Event.
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&event, &vc.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }
}

/// The API server refuses Event notes over 1 kB: cut longer ones, marked.
fn within_note_limit(mut note: String) -> String {
    const LIMIT: usize = 1000;
    if note.len() > LIMIT {
        let mut end = LIMIT - '…'.len_utf8();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    note
}

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
    let started = std::time::Instant::now();

    let mut problem = None;
    let config = render::worker_config(&vc)
        .map_err(|errors| problem = Some(Problem::new("InvalidSpec", errors.join("; "))))
        .ok();
    let mut topics_ready = false;
    let mut lap = Laps::default();
    if let Some(config) = &config {
        match ensure_topics(&vc, &ctx, &namespace, config).await? {
            Ok(()) => topics_ready = true,
            Err(p) => problem = Some(p),
        }
        lap.topics = lap.next();
        let children = builders::children(&vc, config, &ctx.settings);
        apply_children(&vc, &ctx, &namespace, children, topics_ready).await?;
        lap.apply = lap.next();
    }
    let observed = observe_and_roll(&vc, &ctx, &namespace, topics_ready).await?;
    lap.rollout = lap.next();
    publish_status(
        &vc,
        &ctx,
        &namespace,
        config.as_ref(),
        &observed,
        problem.as_ref(),
    )
    .await?;
    let status_ms = lap.next();
    tracing::debug!(videocounter = %vc.name_any(), %namespace, elapsed_ms = started.elapsed().as_millis() as u64,
        topics_ms = lap.topics, apply_ms = lap.apply, rollout_ms = lap.rollout, status_ms, "reconciled");

    Ok(match (&problem, &observed.plan) {
        // Kafka may come back, a Secret may appear: look again soon.
        (Some(_), _) => Action::requeue(Duration::from_secs(15)),
        // Pod events drive a rollout; this is a safety net.
        (None, Some(plan)) if !plan.is_settled() => Action::requeue(Duration::from_secs(30)),
        (None, None) => Action::requeue(Duration::from_secs(10)),
        // Re-check topics now and then (someone may delete one).
        _ => Action::requeue(Duration::from_secs(300)),
    })
}

/// Milliseconds spent in each stage of a reconcile, for the debug log.
struct Laps {
    last: std::time::Instant,
    topics: u64,
    apply: u64,
    rollout: u64,
}

impl Default for Laps {
    fn default() -> Self {
        Self {
            last: std::time::Instant::now(),
            topics: 0,
            apply: 0,
            rollout: 0,
        }
    }
}

impl Laps {
    /// Milliseconds since the previous call (or creation).
    fn next(&mut self) -> u64 {
        let now = std::time::Instant::now();
        let ms = now.duration_since(self.last).as_millis() as u64;
        self.last = now;
        ms
    }
}

/// Failed reconciles are retried after a short pause and counted by kind.
pub fn error_policy(vc: Arc<VideoCounter>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(videocounter = %vc.name_any(), error = %error, "reconcile failed");
    ctx.metrics.count_error(error.kind());
    Action::requeue(Duration::from_secs(5))
}

/// Credentials, then the topics. `Ok(Err(problem))` is a problem with the
/// VideoCounter or Kafka, reported in its status.
async fn ensure_topics(
    vc: &VideoCounter,
    ctx: &Context,
    namespace: &str,
    config: &WorkerConfig,
) -> Result<Result<(), Problem>> {
    let secrets: Api<Secret> = ctx.api(namespace);
    let creds = match read_credentials(&secrets, &vc.spec.kafka).await? {
        Ok(creds) => creds,
        Err(problem) => return Ok(Err(problem)),
    };
    let admin = match ctx.admin_for(config, &creds) {
        Ok(admin) => admin,
        Err(problem) => return Ok(Err(problem)),
    };
    match admin
        .ensure(&topic_plan(config), vc.spec.topics.replication_factor)
        .await
    {
        Ok(created) => {
            if !created.is_empty() {
                ctx.metrics.topics_created.inc_by(created.len() as u64);
                ctx.publish(
                    vc,
                    EventType::Normal,
                    "TopicsCreated",
                    format!("created Kafka topics {}", created.join(", ")),
                )
                .await;
            }
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(Problem::new(e.reason(), e.to_string()))),
    }
}

/// Applies the wanted children and deletes the unwanted ones. The StatefulSet
/// is applied only once the topics are ready: workers never start (or
/// restart) against missing or wrong topics.
async fn apply_children(
    vc: &VideoCounter,
    ctx: &Context,
    namespace: &str,
    children: Children,
    topics_ready: bool,
) -> Result<()> {
    let name = vc.name_any();
    // The ConfigMap, Services and PDB are independent: apply them at once.
    // (The ConfigMap and StatefulSet always exist under fixed names, so only
    // the optional children need pruning.)
    let config_maps: Api<ConfigMap> = ctx.api(namespace);
    let config_map = async { apply(&config_maps, &children.config_map).await.map(drop) };
    let services = async {
        let services: Api<Service> = ctx.api(namespace);
        apply(&services, &children.headless_service).await?;
        let mut keep = vec![names::headless_service(&name)];
        if let Some(service) = &children.api_service {
            apply(&services, service).await?;
            keep.push(names::api_service(&name));
        }
        log_pruned(vc, "Service", prune(&services, vc, &keep).await?);
        Ok(())
    };
    let pdb = async {
        let pdbs: Api<PodDisruptionBudget> = ctx.api(namespace);
        let mut keep = Vec::new();
        if let Some(pdb) = &children.pod_disruption_budget {
            apply(&pdbs, pdb).await?;
            keep.push(names::pod_disruption_budget(&name));
        }
        log_pruned(vc, "PodDisruptionBudget", prune(&pdbs, vc, &keep).await?);
        Ok(())
    };
    futures::try_join!(config_map, services, pdb)?;

    // After the ConfigMap: pods of a new revision must find the new configuration.
    if topics_ready {
        let stateful_sets: Api<StatefulSet> = ctx.api(namespace);
        apply(&stateful_sets, &children.stateful_set).await?;
    }
    Ok(())
}

fn log_pruned(vc: &VideoCounter, kind: &str, deleted: Vec<String>) {
    for child in deleted {
        tracing::info!(videocounter = %vc.name_any(), kind, child, "deleted a child no longer in the spec");
    }
}

/// What the rollout stage saw.
struct Observed {
    plan: Option<RolloutPlan>,
    revision: Option<String>,
    revision_current: bool,
    existing_pods: i32,
    /// Wanted pods that cannot start, as one problem.
    pods_failing: Option<Problem>,
}

/// Observes the pods and deletes the next batch of outdated ones, if allowed.
async fn observe_and_roll(
    vc: &VideoCounter,
    ctx: &Context,
    namespace: &str,
    may_delete: bool,
) -> Result<Observed> {
    let name = vc.name_any();
    let stateful_sets: Api<StatefulSet> = ctx.api(namespace);
    let pods_api: Api<Pod> = ctx.api(namespace);
    let nothing = Observed {
        plan: None,
        revision: None,
        revision_current: false,
        existing_pods: 0,
        pods_failing: None,
    };
    let Some(sts) = stateful_sets.get_opt(&names::stateful_set(&name)).await? else {
        return Ok(nothing);
    };
    let sts_status = sts.status.clone().unwrap_or_default();
    let Some(revision) = sts_status.update_revision.clone() else {
        return Ok(nothing);
    };
    // A template change is visible in updateRevision only once the StatefulSet
    // controller has observed the new generation; until then, look but do not touch.
    let current =
        sts_status.observed_generation.is_some() && sts_status.observed_generation == sts.metadata.generation;
    // A fresh list, not a cache: a stale view could delete more than the budget.
    let pods = pods_api
        .list(&ListParams::default().labels(&builders::selector_string(vc)))
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
        max_unavailable: builders::max_unavailable(vc),
    };
    let plan = rollout::plan(&observed, &target);
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

async fn publish_status(
    vc: &VideoCounter,
    ctx: &Context,
    namespace: &str,
    config: Option<&WorkerConfig>,
    observed: &Observed,
    problem: Option<&Problem>,
) -> Result<()> {
    let now = Timestamp::now().to_string();
    let previous = vc.status.as_ref();
    let new = status::compute(&Observation {
        generation: vc.metadata.generation,
        selector: builders::selector_string(vc),
        windows: config.map(render::windows_summary),
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
    let was_degraded = previous
        .and_then(|s| status::find(s, DEGRADED))
        .filter(|c| c.status == crate::crd::ConditionStatus::True);
    match (problem.or(observed.pods_failing.as_ref()), was_degraded) {
        (Some(p), Some(c)) if c.reason == p.reason && c.message == p.message => {}
        (Some(p), _) => {
            tracing::warn!(videocounter = %vc.name_any(), %namespace, reason = %p.reason, message = %p.message, "degraded");
            ctx.publish(vc, EventType::Warning, &p.reason, p.message.clone())
                .await;
        }
        (None, Some(c)) => {
            ctx.publish(
                vc,
                EventType::Normal,
                "Recovered",
                format!("no longer degraded ({})", c.reason),
            )
            .await;
        }
        (None, None) => {}
    }
    let api: Api<VideoCounter> = Api::namespaced(ctx.client.clone(), namespace);
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

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let (vcs, sts, cms, svcs, pdbs, pods) = match &ctx.namespace {
        Some(ns) => (
            Api::<VideoCounter>::namespaced(client.clone(), ns),
            Api::<StatefulSet>::namespaced(client.clone(), ns),
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
            Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
            Api::<Pod>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    // Watch only what this operator manages.
    let ours = || watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    Controller::new(vcs, watcher::Config::default())
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(50)))
        .owns(sts, ours())
        .owns(cms, ours())
        .owns(svcs, ours())
        .owns(pdbs, ours())
        // Pods belong to the StatefulSet, not to the VideoCounter: map them by label.
        .watches(pods, ours(), |pod: Pod| {
            let instance = pod.labels().get(INSTANCE_LABEL)?.clone();
            Some(ObjectRef::<VideoCounter>::new(&instance).within(&pod.namespace()?))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile loop");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_notes_fit_the_api_limit() {
        assert_eq!(within_note_limit("short".into()), "short");
        let long = within_note_limit("é".repeat(800));
        assert!(long.len() <= 1000 && long.ends_with('…'), "{}", long.len());
    }
}
