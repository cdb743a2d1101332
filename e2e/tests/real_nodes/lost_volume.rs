//! The README's lost-volume drill on a real node, under load: a worker's
//! disk disappears (its volume's directory on the node), its restarted pod
//! cannot mount it and hangs; the README's two commands give it a new empty
//! claim, the worker rebuilds its stores from the changelog, is Ready only
//! once restored, and the counts are exact.

use crate::load::{Load, assert_counts_exact};
use crate::support::{COUNTER, Deployment};
use std::time::{Duration, Instant};
use videocounter_e2e::cli::{eventually, get_json, http, kubectl, readme_commands, run};

#[test]
fn the_lost_volume_drill_restores_the_worker_from_the_changelog_with_exact_counts() {
    let commands = readme_commands("**Recovering a lost volume.**");
    assert_eq!(commands.len(), 2, "{commands:?}");
    let mut d = Deployment::install("lost-vol");
    d.apply_counter(2);
    d.wait_ready(2, Duration::from_secs(180));
    let load = Load::start(&d.input, &d.windows, 200, 300);
    std::thread::sleep(Duration::from_secs(15));

    let pod_name = format!("{COUNTER}-1");
    let old_claim = d.claim(&format!("data-{pod_name}")).expect("likes-1's claim");
    let untouched = d.claim(&format!("data-{COUNTER}-0")).unwrap()["metadata"]["uid"].clone();
    let pv = get_json(&["pv", old_claim["spec"]["volumeName"].as_str().unwrap()]).unwrap();
    let path = pv["spec"]["local"]["path"].as_str().unwrap().to_string();
    let lost = format!("{path}.lost");

    // The disk goes (the running worker keeps its open mount), then the pod restarts.
    std::fs::rename(&path, &lost).unwrap();
    let old_pod = d.pod(&pod_name).unwrap()["metadata"]["uid"].clone();
    run(kubectl().args(["delete", "pod", &pod_name, "-n", &d.ns.name, "--wait=false"]));
    eventually(
        "the new likes-1 failing to mount its volume",
        Duration::from_secs(90),
        || {
            let p = d.pod(&pod_name)?;
            (p["metadata"]["uid"] != old_pod).then_some(())?;
            let events = get_json(&[
                "events",
                "-n",
                &d.ns.name,
                "--field-selector",
                &format!("involvedObject.name={pod_name}"),
            ])?;
            events["items"]
                .as_array()?
                .iter()
                .any(|e| e["reason"] == "FailedMount")
                .then_some(())
        },
    );
    assert_ne!(
        d.pod(&pod_name).unwrap()["status"]["phase"],
        "Running",
        "likes-1 runs without its volume"
    );

    // The README's commands, as written (in the deployment's namespace).
    let drill = Instant::now();
    for command in &commands {
        assert_eq!(command[0], "kubectl", "{command:?}");
        run(kubectl().args(&command[1..]).args(["-n", &d.ns.name]));
    }
    // Never Ready before every partition is restored; then restored from the changelog.
    let restored = eventually(
        "likes-1 on a new claim, restored",
        Duration::from_secs(180),
        || {
            let p = d.pod(&pod_name)?;
            let c = d.claim(&format!("data-{pod_name}"))?;
            (c["metadata"]["uid"] != old_claim["metadata"]["uid"]).then_some(())?;
            let addr = crate::support::pod_http(&p)?;
            let (_, body) = http(addr, "GET", "/v1/partitions", "")?;
            let parts: serde_json::Value = serde_json::from_str(&body).ok()?;
            let all_active = parts["partitions"]
                .as_array()?
                .iter()
                .all(|x| x["state"] == "active");
            assert!(
                all_active || !crate::support::pod_ready(&p),
                "likes-1 is Ready while restoring: {parts}"
            );
            d.is_restored(&p).then_some(parts)
        },
    );
    println!(
        "lost volume -> new claim, restored and Ready: {:.1} s",
        drill.elapsed().as_secs_f64()
    );
    let replayed: u64 = restored["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["restored_records"].as_u64().unwrap_or(0))
        .sum();
    let owned = restored["partitions"].as_array().unwrap().len();
    assert!(
        owned == 0 || replayed > 0,
        "likes-1 owns {owned} partitions but replayed nothing: {restored}"
    );
    assert_eq!(
        d.claim(&format!("data-{COUNTER}-0")).unwrap()["metadata"]["uid"],
        untouched,
        "likes-0 keeps its volume"
    );

    d.wait_ready(2, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let sent = load.stop();
    assert_counts_exact(&d.windows, &sent.expected, Duration::from_secs(120), || {
        format!("late likes: {}\n{}", d.late_events(), d.worker_logs(30))
    });
    std::fs::remove_dir_all(&lost).unwrap();
}
