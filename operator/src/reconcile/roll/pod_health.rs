//! Why a worker pod cannot start (pure): a bad image, a bad configuration, a
//! crashing container or no node to run on, read from the pod's status as the
//! kubelet and the scheduler report it. The reconcile turns what this finds
//! into the `Degraded` condition and an Event, so `kubectl get vc` tells a
//! stuck rollout from a slow one without looking at every pod.
//!
//! Only pods that are not Ready count: a container that crashed and came
//! back is not a problem any more. The message leaves out what changes on
//! every retry (restart counts, back-off delays), so a pod stuck the same way
//! does not rewrite the status or repeat the Event.
//!
//! (Over 400 lines: most of it is tests, one per way a pod fails to start,
//! each built from the status the kubelet writes.)

use super::plan::ordinal_of;
use crate::reconcile::outcome::Problem;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Condition reason: the image cannot be pulled (ErrImagePull, ImagePullBackOff, ...).
pub const IMAGE_PULL_FAILED: &str = "ImagePullFailed";
/// Condition reason: the container cannot be created or run from its spec
/// (CreateContainerConfigError: a missing Secret or key, ...).
pub const CONTAINER_CONFIG_ERROR: &str = "ContainerConfigError";
/// Condition reason: the container starts and exits with an error, again and again.
pub const CRASH_LOOP: &str = "CrashLoopBackOff";
/// Condition reason: the scheduler finds no node for the pod.
pub const UNSCHEDULABLE: &str = "Unschedulable";

/// Most pods named in one message (a condition message should stay short).
const MAX_PODS_NAMED: usize = 3;
/// Longest piece of a kubelet or scheduler message quoted.
const MAX_DETAIL_CHARS: usize = 200;

/// One pod that cannot start, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTrouble {
    pub pod: String,
    pub ordinal: u32,
    /// One of the reasons above.
    pub reason: &'static str,
    /// What the kubelet or the scheduler said, naming the container and its
    /// own reason, e.g. `container worker ImagePullBackOff: Back-off pulling image "x"`.
    pub detail: String,
}

/// The kubelet's waiting reasons that mean "will not start until something changes".
fn waiting_category(reason: &str) -> Option<&'static str> {
    match reason {
        "ErrImagePull"
        | "ImagePullBackOff"
        | "ErrImageNeverPull"
        | "InvalidImageName"
        | "RegistryUnavailable"
        | "SignatureValidationFailed" => Some(IMAGE_PULL_FAILED),
        "CreateContainerConfigError"
        | "CreateContainerError"
        | "RunContainerError"
        | "PreStartHookError"
        | "PostStartHookError" => Some(CONTAINER_CONFIG_ERROR),
        "CrashLoopBackOff" => Some(CRASH_LOOP),
        _ => None,
    }
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// How the container last ended, e.g. `exit code 2 (Error): bad config`.
fn last_exit(status: &ContainerStatus) -> Option<String> {
    let ended = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| status.state.as_ref().and_then(|s| s.terminated.as_ref()))?;
    let mut text = format!("exit code {}", ended.exit_code);
    if let Some(reason) = ended.reason.as_deref().filter(|r| !r.is_empty()) {
        text.push_str(&format!(" ({reason})"));
    }
    if let Some(message) = ended.message.as_deref().filter(|m| !m.trim().is_empty()) {
        text.push_str(&format!(": {}", shorten(message)));
    }
    Some(text)
}

fn container_trouble(status: &ContainerStatus) -> Option<(&'static str, String)> {
    let name = &status.name;
    let state = status.state.as_ref();
    if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let category = waiting_category(reason)?;
        let detail = if category == CRASH_LOOP {
            // The waiting message is only the back-off delay; how it ended says why.
            match last_exit(status) {
                Some(exit) => format!("container {name} {reason}: last {exit}"),
                None => format!("container {name} {reason}"),
            }
        } else {
            match waiting.message.as_deref().filter(|m| !m.trim().is_empty()) {
                Some(message) => format!("container {name} {reason}: {}", shorten(message)),
                None => format!("container {name} {reason}"),
            }
        };
        return Some((category, detail));
    }
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let crashed_before = status.restart_count > 0
        && status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0);
    match terminated {
        // "ContainerCannotRun"/"StartError": the runtime could not start the process.
        Some(t) if matches!(t.reason.as_deref(), Some("ContainerCannotRun" | "StartError")) => Some((
            CONTAINER_CONFIG_ERROR,
            format!("container {name} {}", last_exit(status).unwrap_or_default()),
        )),
        Some(t) if t.exit_code != 0 => Some((
            CRASH_LOOP,
            format!(
                "container {name} exited: {}",
                last_exit(status).unwrap_or_default()
            ),
        )),
        // Running again after crashing, not yet Ready: still a crash loop.
        None if crashed_before => Some((
            CRASH_LOOP,
            format!(
                "container {name} restarted after {}",
                last_exit(status).unwrap_or_default()
            ),
        )),
        _ => None,
    }
}

/// Why `pod` (of StatefulSet `stateful_set`) cannot start, if it cannot.
/// Ready and terminating pods, and pods that are merely starting, have none.
pub fn pod_trouble(stateful_set: &str, pod: &Pod) -> Option<PodTrouble> {
    let name = pod.metadata.name.clone()?;
    let ordinal = ordinal_of(stateful_set, &name)?;
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.as_deref().unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
    {
        return None;
    }
    let found = |reason, detail| {
        Some(PodTrouble {
            pod: name.clone(),
            ordinal,
            reason,
            detail,
        })
    };
    if let Some(unschedulable) = conditions.iter().find(|c| {
        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
    }) {
        let message = unschedulable.message.as_deref().unwrap_or("no node fits");
        return found(
            UNSCHEDULABLE,
            format!("cannot be scheduled: {}", shorten(message)),
        );
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in containers {
        if let Some((reason, detail)) = container_trouble(container) {
            return found(reason, detail);
        }
    }
    None
}

/// The troubles of the wanted pods (ordinals below `replicas`), lowest ordinal first.
pub fn troubles(stateful_set: &str, replicas: i32, pods: &[Pod]) -> Vec<PodTrouble> {
    let mut found: Vec<PodTrouble> = pods
        .iter()
        .filter_map(|p| pod_trouble(stateful_set, p))
        .filter(|t| i64::from(t.ordinal) < i64::from(replicas))
        .collect();
    found.sort_by_key(|t| t.ordinal);
    found
}

/// `1 worker pod`, `2 worker pods`.
fn pods(n: usize, adjective: &str) -> String {
    format!("{n} {adjective} pod{}", if n == 1 { "" } else { "s" })
}

/// One `Degraded` problem for all the troubles: the reason of the first pod,
/// a message naming the first few pods and how many more there are.
pub fn summarize(troubles: &[PodTrouble]) -> Option<Problem> {
    let first = troubles.first()?;
    let mut parts: Vec<String> = troubles
        .iter()
        .take(MAX_PODS_NAMED)
        .map(|t| format!("pod {} {}", t.pod, t.detail))
        .collect();
    if troubles.len() > MAX_PODS_NAMED {
        parts.push(format!("and {}", pods(troubles.len() - MAX_PODS_NAMED, "more")));
    }
    let message = format!(
        "{} cannot start: {}",
        pods(troubles.len(), "worker"),
        parts.join("; ")
    );
    Some(Problem::new(first.reason, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn waiting(name: &str, reason: &str, message: &str) -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": name},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{
                    "name": "worker", "image": "example.invalid/worker:v2", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}
                }]
            }
        }))
    }

    fn crash_looping(name: &str) -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": name},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{
                    "name": "worker", "image": "w", "imageID": "", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                        "message": "back-off 2m40s restarting failed container=worker pod=likes-1_ns(uid)"}},
                    "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                        "message": "windows[1].size 1m appears twice"}}
                }]
            }
        }))
    }

    #[test]
    fn a_bad_image_names_the_pod_the_container_and_its_reason() {
        for reason in [
            "ErrImagePull",
            "ImagePullBackOff",
            "ErrImageNeverPull",
            "InvalidImageName",
        ] {
            let p = waiting(
                "likes-3",
                reason,
                "Back-off pulling image \"example.invalid/worker:v2\"",
            );
            let t = pod_trouble("likes", &p).unwrap();
            assert_eq!(t.reason, IMAGE_PULL_FAILED, "{reason}");
            assert_eq!(
                t.detail,
                format!("container worker {reason}: Back-off pulling image \"example.invalid/worker:v2\"")
            );
            assert_eq!((t.pod.as_str(), t.ordinal), ("likes-3", 3));
        }
    }

    #[test]
    fn a_bad_configuration_is_a_container_config_error() {
        let p = waiting(
            "likes-0",
            "CreateContainerConfigError",
            "secret \"kafka-tls\" not found",
        );
        let t = pod_trouble("likes", &p).unwrap();
        assert_eq!(t.reason, CONTAINER_CONFIG_ERROR);
        assert_eq!(
            t.detail,
            "container worker CreateContainerConfigError: secret \"kafka-tls\" not found"
        );
    }

    #[test]
    fn a_crash_loop_says_how_the_container_ended_not_the_back_off() {
        let t = pod_trouble("likes", &crash_looping("likes-1")).unwrap();
        assert_eq!(t.reason, CRASH_LOOP);
        assert_eq!(
            t.detail,
            "container worker CrashLoopBackOff: last exit code 2 (Error): windows[1].size 1m appears twice"
        );
        assert!(!t.detail.contains("back-off"), "{}", t.detail);
    }

    #[test]
    fn a_container_running_again_after_a_crash_is_still_in_trouble_until_ready() {
        let mut p = crash_looping("likes-1");
        let status = &mut p.status.as_mut().unwrap().container_statuses.as_mut().unwrap()[0];
        status.state = Some(serde_json::from_value(serde_json::json!({"running": {}})).unwrap());
        let t = pod_trouble("likes", &p).unwrap();
        assert_eq!(t.reason, CRASH_LOOP);
        assert!(t.detail.contains("restarted after exit code 2"), "{}", t.detail);
        // Once Ready, the crash is history.
        p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "True".into();
        assert_eq!(pod_trouble("likes", &p), None);
    }

    #[test]
    fn an_unschedulable_pod_quotes_the_scheduler() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "likes-5"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}]}
        }));
        let t = pod_trouble("likes", &p).unwrap();
        assert_eq!(t.reason, UNSCHEDULABLE);
        assert_eq!(
            t.detail,
            "cannot be scheduled: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        );
    }

    #[test]
    fn starting_ready_and_terminating_pods_are_fine() {
        let creating = waiting("likes-0", "ContainerCreating", "");
        assert_eq!(pod_trouble("likes", &creating), None);
        let fresh = pod(serde_json::json!({"metadata": {"name": "likes-0"}, "status": {"phase": "Pending"}}));
        assert_eq!(pod_trouble("likes", &fresh), None);
        let mut leaving = waiting("likes-0", "ImagePullBackOff", "x");
        leaving.metadata.deletion_timestamp =
            Some(serde_json::from_value(serde_json::json!("2025-01-01T00:00:00Z")).unwrap());
        assert_eq!(pod_trouble("likes", &leaving), None);
        let other = waiting("other-0", "ImagePullBackOff", "x");
        assert_eq!(pod_trouble("likes", &other), None);
    }

    #[test]
    fn a_clean_exit_or_a_first_start_is_not_a_crash() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "likes-0"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{
                "name": "worker", "image": "w", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {}}}]}
        }));
        assert_eq!(pod_trouble("likes", &p), None);
    }

    #[test]
    fn long_kubelet_messages_are_shortened() {
        let p = waiting("likes-0", "ErrImagePull", &"x".repeat(1000));
        let t = pod_trouble("likes", &p).unwrap();
        assert!(t.detail.chars().count() < 300, "{}", t.detail.len());
        assert!(t.detail.ends_with('…'));
    }

    #[test]
    fn the_summary_names_the_first_pods_by_ordinal_and_counts_the_rest() {
        let pods: Vec<Pod> = [5, 3, 4, 2, 9]
            .iter()
            .map(|i| {
                waiting(
                    &format!("likes-{i}"),
                    "ImagePullBackOff",
                    "Back-off pulling image \"x\"",
                )
            })
            .collect();
        // Ordinal 9 is beyond replicas (being removed by a scale-down): not counted.
        let found = troubles("likes", 6, &pods);
        assert_eq!(found.iter().map(|t| t.ordinal).collect::<Vec<_>>(), [2, 3, 4, 5]);
        let problem = summarize(&found).unwrap();
        assert_eq!(problem.reason, IMAGE_PULL_FAILED);
        assert_eq!(
            problem.message,
            "4 worker pods cannot start: \
             pod likes-2 container worker ImagePullBackOff: Back-off pulling image \"x\"; \
             pod likes-3 container worker ImagePullBackOff: Back-off pulling image \"x\"; \
             pod likes-4 container worker ImagePullBackOff: Back-off pulling image \"x\"; and 1 more pod"
        );
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn the_message_does_not_change_while_a_pod_stays_stuck_the_same_way() {
        let mut later = crash_looping("likes-1");
        let status = &mut later
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0];
        status.restart_count = 9;
        status.state = Some(
            serde_json::from_value(serde_json::json!({"waiting": {"reason": "CrashLoopBackOff",
                "message": "back-off 5m0s restarting failed container=worker pod=likes-1_ns(uid)"}}))
            .unwrap(),
        );
        assert_eq!(
            summarize(&troubles("likes", 2, &[crash_looping("likes-1")])),
            summarize(&troubles("likes", 2, &[later]))
        );
    }
}
