//! The real nodes themselves: pods on two nodes reach each other, Kafka's
//! listener for pods and the API server (the kubernetes Service), and
//! nothing else: no default route out, and the host's firewall guard drops
//! what a pod aims at other host addresses and ports. Volumes of the
//! node-local StorageClass are directories on the pod's node, writable with
//! the pod's fsGroup, and removed with their claim.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;
use videocounter_e2e::cli::{apply, eventually, get_json, kubectl, run, try_run};
use videocounter_e2e::nodes::{NodeNamespace, RealNodes};

/// A busybox pod pinned to `node`, meeting the restricted Pod Security Standard.
fn netcheck_pod(nodes: &RealNodes, name: &str, node: &str, command: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "check",
                "image": nodes.netcheck_image,
                "command": ["/bin/sh", "-c", command],
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    })
}

fn running_pod(ns: &str, name: &str) -> serde_json::Value {
    eventually(&format!("pod {name} running"), Duration::from_secs(60), || {
        let p = get_json(&["pod", name, "-n", ns])?;
        (p["status"]["phase"] == "Running").then_some(p)
    })
}

/// Runs `sh -c script` in the pod; its exit code and output.
fn exec(ns: &str, pod: &str, script: &str) -> (i32, String) {
    let out = try_run(kubectl().args(["exec", "-n", ns, pod, "--", "/bin/sh", "-c", script]));
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Whether the pod connects to `host:port` within 2 s.
fn connects(ns: &str, pod: &str, host: &str, port: u16) -> bool {
    exec(
        ns,
        pod,
        &format!("nc -w 2 {host} {port} </dev/null >/dev/null 2>&1"),
    )
    .0 == 0
}

/// The host's IPv4 addresses outside the nodes' bridge (eth0 and the like).
fn other_host_addresses(bridge_ip: &str) -> Vec<String> {
    let out = run(Command::new("ip").args(["-o", "-4", "addr", "show"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3)?.split('/').next().map(String::from))
        .filter(|ip| !ip.starts_with("127.") && !ip.starts_with(&bridge_ip[..bridge_ip.rfind('.').unwrap()]))
        .collect()
}

#[test]
fn pods_reach_each_other_kafka_and_the_api_server_and_nothing_else() {
    let nodes = RealNodes::from_env();
    assert!(
        nodes.names.len() >= 2,
        "the ground runs two nodes: {:?}",
        nodes.names
    );
    let ns = NodeNamespace::new(&nodes, "node-net");
    apply(
        &ns.name,
        &netcheck_pod(&nodes, "a", &nodes.names[0], "sleep 3600").to_string(),
    );
    apply(
        &ns.name,
        &netcheck_pod(
            &nodes,
            "b",
            &nodes.names[1],
            "while true; do nc -l -p 9000 -e echo hello; done",
        )
        .to_string(),
    );
    let a = running_pod(&ns.name, "a");
    let b = running_pod(&ns.name, "b");
    assert_eq!(a["spec"]["nodeName"], nodes.names[0].as_str());
    assert_eq!(b["spec"]["nodeName"], nodes.names[1].as_str());
    let b_ip = b["status"]["podIP"].as_str().unwrap().to_string();

    // Routes: the pod subnet and the Service range through the host; no default route.
    let (_, routes) = exec(&ns.name, "a", "ip route");
    assert!(
        !routes.contains("default"),
        "a pod has a default route:\n{routes}"
    );

    // Pod to pod across nodes.
    let (code, hello) = exec(&ns.name, "a", &format!("nc -w 2 {b_ip} 9000 </dev/null"));
    assert_eq!((code, hello.trim()), (0, "hello"), "a cannot reach b at {b_ip}");

    // Kafka's listener for pods, and the API server at the kubernetes Service.
    let (host, port) = nodes.pod_bootstrap.rsplit_once(':').unwrap();
    assert!(
        connects(&ns.name, "a", host, port.parse().unwrap()),
        "a pod cannot reach Kafka at {}",
        nodes.pod_bootstrap
    );
    let service = get_json(&["service", "kubernetes", "-n", "default"]).unwrap();
    let service_ip = service["spec"]["clusterIP"].as_str().unwrap().to_string();
    // (TLS and a token on that path are the operator pod's, in user_path.)
    assert!(
        connects(&ns.name, "a", &service_ip, 443),
        "a pod cannot reach the API server at {service_ip}:443"
    );

    // Nothing else of the host: a port the host opens on every address is
    // reachable neither at the bridge address nor at its other addresses.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    assert!(
        !connects(&ns.name, "a", host, open),
        "a pod reached host port {open} at {host}"
    );
    for ip in other_host_addresses(host) {
        assert!(
            !connects(&ns.name, "a", &ip, open),
            "a pod reached the host at {ip}:{open}"
        );
    }
    // And nothing outside the machine.
    for (ip, port) in [("8.8.8.8", 53), ("1.1.1.1", 443)] {
        assert!(!connects(&ns.name, "a", ip, port), "a pod reached {ip}:{port}");
    }
    drop(listener);
}

#[test]
fn node_local_volumes_are_writable_with_fs_group_and_go_with_their_claim() {
    let nodes = RealNodes::from_env();
    let ns = NodeNamespace::new(&nodes, "node-vol");
    let claim = serde_json::json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": nodes.storage_class,
            "resources": {"requests": {"storage": "1Gi"}}},
    });
    apply(&ns.name, &claim.to_string());
    let mut pod = netcheck_pod(
        &nodes,
        "writer",
        &nodes.names[1],
        "echo kept > /data/file && sleep 3600",
    );
    pod["spec"]["containers"][0]["volumeMounts"] =
        serde_json::json!([{"name": "data", "mountPath": "/data"}]);
    pod["spec"]["volumes"] =
        serde_json::json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]);
    apply(&ns.name, &pod.to_string());
    running_pod(&ns.name, "writer");

    let pvc = eventually("the claim bound", Duration::from_secs(30), || {
        let c = get_json(&["pvc", "data", "-n", &ns.name])?;
        (c["status"]["phase"] == "Bound").then_some(c)
    });
    let pv = get_json(&["pv", pvc["spec"]["volumeName"].as_str().unwrap()]).unwrap();
    let path = pv["spec"]["local"]["path"]
        .as_str()
        .expect("a local volume")
        .to_string();
    let affinity =
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0].clone();
    assert_eq!(
        affinity["values"][0],
        nodes.names[1].as_str(),
        "the volume is bound to the pod's node: {affinity}"
    );
    let file = std::path::Path::new(&path).join("file");
    eventually(
        "the pod's file on the node's disk",
        Duration::from_secs(20),
        || (std::fs::read_to_string(&file).ok()?.trim() == "kept").then_some(()),
    );

    run(kubectl().args([
        "delete",
        "pod",
        "writer",
        "-n",
        &ns.name,
        "--wait=true",
        "--timeout=60s",
    ]));
    run(kubectl().args([
        "delete",
        "pvc",
        "data",
        "-n",
        &ns.name,
        "--wait=true",
        "--timeout=60s",
    ]));
    eventually(
        "the volume and its directory deleted",
        Duration::from_secs(60),
        || {
            let gone = get_json(&["pv", pv["metadata"]["name"].as_str().unwrap()]).is_none();
            (gone && !std::path::Path::new(&path).exists()).then_some(())
        },
    );
}
