//! The README's operations procedures, run as written against the test
//! ground's real controllers (StatefulSet, PVC protection, volume binding on
//! kwok nodes).

use crate::support::{Namespace, apply, eventually, get_json, kubectl, read_repo_file, run};
use serde_json::Value;
use std::time::Duration;
use videocounter_e2e::cli::readme_commands;

/// A StatefulSet shaped like the operator's for `likes` (OnDelete, Parallel,
/// a `data` claim per pod).
fn likes_stateful_set() -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "likes"},
        "spec": {
            "replicas": 2,
            "serviceName": "likes-headless",
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": {"app.kubernetes.io/instance": "likes"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/instance": "likes"}},
                "spec": {
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "worker",
                        "image": "example.invalid/videocounter-worker:test",
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/videocounter"}]
                    }]
                }
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    })
}

fn bound_claim_uid(ns: &str, name: &str) -> Option<String> {
    let pvc = get_json(&["pvc", name, "-n", ns])?;
    (pvc["status"]["phase"] == "Bound" && pvc["metadata"]["deletionTimestamp"].is_null())
        .then(|| pvc["metadata"]["uid"].as_str().unwrap().to_string())
}

fn running_pod_claim(ns: &str, pod: &str) -> Option<()> {
    let pod = get_json(&["pod", pod, "-n", ns])?;
    (pod["status"]["phase"] == "Running" && pod["metadata"]["deletionTimestamp"].is_null()).then_some(())
}

#[test]
fn recovering_a_lost_volume_as_the_readme_says_gives_the_pod_a_new_empty_claim() {
    let commands = readme_commands("**Recovering a lost volume.**");
    assert_eq!(commands.len(), 2, "{commands:?}");
    let ns = Namespace::restricted("ops-volume");
    apply(&ns.name, &likes_stateful_set().to_string());
    let old = eventually("likes-1's claim to be bound", Duration::from_secs(60), || {
        running_pod_claim(&ns.name, "likes-1")?;
        bound_claim_uid(&ns.name, "data-likes-1")
    });
    let untouched = bound_claim_uid(&ns.name, "data-likes-0").expect("likes-0's claim");

    for command in &commands {
        assert_eq!(command[0], "kubectl", "{command:?}");
        run(kubectl().args(&command[1..]).args(["-n", &ns.name]));
    }

    let new = eventually(
        "likes-1 running on a new bound claim",
        Duration::from_secs(90),
        || {
            running_pod_claim(&ns.name, "likes-1")?;
            bound_claim_uid(&ns.name, "data-likes-1").filter(|uid| *uid != old)
        },
    );
    assert_ne!(new, old);
    assert_eq!(
        bound_claim_uid(&ns.name, "data-likes-0").as_deref(),
        Some(untouched.as_str()),
        "likes-0 keeps its volume"
    );
}

fn worker_pods(ns: &str, name: &str) -> Vec<Value> {
    let out = run(kubectl().args([
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("app.kubernetes.io/instance={name}"),
        "-o",
        "json",
    ]));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn ready_videocounter(ns: &str, name: &str, replicas: i64) -> Option<()> {
    let vc = get_json(&["videocounter", name, "-n", ns])?;
    let ready = vc["status"]["conditions"]
        .as_array()?
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    (ready
        && vc["status"]["readyReplicas"] == replicas
        && vc["status"]["observedGeneration"] == vc["metadata"]["generation"])
        .then_some(())
}

/// The README's rolling restart and scaling, done to a VideoCounter that a
/// running operator manages: every pod is replaced and the counter is Ready
/// again; then it scales to `replicas + 1`. (Run by install.rs, where the
/// operator has only the chart's permissions, so pod deletion and scaling
/// are proven allowed too.)
pub fn restart_and_scale(ns: &str, name: &str, replicas: i64) {
    let before: Vec<String> = worker_pods(ns, name)
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(before.len() as i64, replicas);
    let readme = read_repo_file("README.md");
    assert!(readme.contains(
        "kubectl annotate vc/likes videocounter.io/restartedAt=\"$(date -u +%FT%TZ)\" --overwrite"
    ));
    let now =
        String::from_utf8(run(std::process::Command::new("date").args(["-u", "+%FT%TZ"])).stdout).unwrap();
    run(kubectl().args([
        "annotate",
        &format!("vc/{name}"),
        &format!("videocounter.io/restartedAt={}", now.trim()),
        "--overwrite",
        "-n",
        ns,
    ]));
    eventually(
        "every worker pod replaced and the VideoCounter Ready again",
        Duration::from_secs(120),
        || {
            let pods = worker_pods(ns, name);
            let replaced = pods.len() as i64 == replicas
                && pods.iter().all(|p| {
                    !before.iter().any(|uid| p["metadata"]["uid"] == uid.as_str())
                        && p["status"]["phase"] == "Running"
                });
            replaced.then_some(())?;
            ready_videocounter(ns, name, replicas)
        },
    );

    assert!(readme.contains("kubectl scale vc/likes --replicas=4"));
    run(kubectl().args([
        "scale",
        &format!("vc/{name}"),
        &format!("--replicas={}", replicas + 1),
        "-n",
        ns,
    ]));
    eventually(
        "the scaled VideoCounter Ready with one more worker",
        Duration::from_secs(90),
        || ready_videocounter(ns, name, replicas + 1),
    );
}
