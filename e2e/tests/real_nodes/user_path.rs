//! The user's path, as the README tells it, on real nodes: install the
//! chart, `kubectl apply` the example counter, and the worker pods turn
//! Ready once their stores are restored; likes sent to the input topic come
//! out of video_aggregations_1/5/10 with exact counts; a worker pod deleted
//! comes back on its own volume and is Ready again.

use crate::load::{Load, assert_counts_exact};
use crate::support::{COUNTER, Deployment, pod_http, pod_name};
use std::time::{Duration, Instant};
use videocounter_e2e::cli::{get_json, http};
use videocounter_e2e::nodes::{container_memory, container_processes_rss};

#[test]
fn the_example_counter_runs_on_real_nodes_and_counts_likes_exactly() {
    let mut d = Deployment::install("path");
    let applied = Instant::now();
    d.apply_counter(2);
    d.wait_ready(2, Duration::from_secs(180));
    println!(
        "apply -> 2 workers Ready (stores restored): {:.1} s",
        applied.elapsed().as_secs_f64()
    );

    // What runs is what the operator built, doing what it should on a node.
    let config = get_json(&["configmap", &format!("{COUNTER}-config"), "-n", &d.ns.name])
        .expect("the worker ConfigMap");
    assert!(
        config["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .contains(&d.nodes.pod_bootstrap),
        "the workers get the broker's listener for pods"
    );
    let pods = d.worker_pods();
    let mut nodes_used: Vec<&str> = pods
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap())
        .collect();
    nodes_used.dedup();
    assert_eq!(nodes_used.len(), 2, "the two workers spread over the two nodes");
    for pod in &pods {
        let name = pod_name(pod);
        let probe = &pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"];
        assert_eq!(probe, "/readyz", "{name}: readiness is the worker's own");
        let (code, body) = http(pod_http(pod).unwrap(), "GET", "/v1/partitions", "").unwrap();
        assert_eq!(code, 200);
        let partitions: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            partitions["instance_id"],
            name.as_str(),
            "the pod name is the member id"
        );
        assert_eq!(partitions["application_id"], d.application_id().as_str());
        // The stores live on the pod's node-local volume, written as the worker's user.
        let claim = get_json(&["pvc", &format!("data-{name}"), "-n", &d.ns.name]).expect("the pod's claim");
        let pv = get_json(&["pv", claim["spec"]["volumeName"].as_str().unwrap()]).unwrap();
        let path = std::path::Path::new(pv["spec"]["local"]["path"].as_str().expect("a node-local volume"));
        for p in partitions["partitions"].as_array().unwrap() {
            let store = path
                .join(d.application_id())
                .join(format!("partition-{}", p["partition"]));
            assert!(
                store.join("CURRENT").exists(),
                "{name}: no RocksDB store at {}",
                store.display()
            );
        }
    }

    // Steady likes for a while; the memory of each worker meanwhile.
    let load = Load::start(&d.input, &d.windows, 200, 300);
    std::thread::sleep(Duration::from_secs(20));
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().unwrap();
        let (working_set, _) = container_memory(node, &d.ns.name, &pod_name(pod), "worker")
            .expect("the worker's memory from its kubelet");
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap();
        let rss = container_processes_rss(id).expect("the worker's processes");
        println!(
            "worker pod {} under 300 likes/s: working set {} MiB (kubelet), process RSS {} MiB",
            pod_name(pod),
            working_set >> 20,
            rss >> 20
        );
    }
    let sent = load.stop();
    let waited = assert_counts_exact(&d.windows, &sent.expected, Duration::from_secs(120), || {
        format!("late likes: {}\n{}", d.late_events(), d.worker_logs(20))
    });
    println!(
        "{} likes counted exactly in 1/5/10-minute windows ({:.1} s after the last)",
        sent.likes,
        waited.as_secs_f64()
    );

    // A pod restart keeps its volume: same claim, same volume, Ready again.
    let claim_before = get_json(&["pvc", &format!("data-{COUNTER}-0"), "-n", &d.ns.name]).unwrap();
    let replaced = d.replace_pod(&format!("{COUNTER}-0"));
    println!(
        "pod deleted -> back Ready on its volume: {:.1} s",
        replaced.as_secs_f64()
    );
    let claim_after = get_json(&["pvc", &format!("data-{COUNTER}-0"), "-n", &d.ns.name]).unwrap();
    assert_eq!(
        claim_after["metadata"]["uid"], claim_before["metadata"]["uid"],
        "the same claim"
    );
    assert_eq!(
        claim_after["spec"]["volumeName"], claim_before["spec"]["volumeName"],
        "the same volume"
    );
    d.wait_ready(2, Duration::from_secs(60));
}
