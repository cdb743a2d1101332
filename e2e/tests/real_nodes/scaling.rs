//! Scaling by editing `spec.replicas` (2 → 4 → 2) under load: the new
//! workers take partitions over (restoring their stores first), the removed
//! ones give them back, the counts stay exact, and the volumes of the
//! removed pods are kept (`storage.retentionPolicy.whenScaled: Retain`).

use crate::load::{Load, assert_counts_exact};
use crate::support::{COUNTER, Deployment};
use std::collections::BTreeSet;
use std::time::Duration;
use videocounter_e2e::cli::get_json;

/// Which pods own which partitions (input and counting), by pod name.
fn owners(d: &Deployment) -> Vec<(String, usize)> {
    d.assignments()
        .into_iter()
        .map(|(pod, a)| {
            let n = a["input_partitions"].as_array().map_or(0, Vec::len)
                + a["partitions"].as_array().map_or(0, Vec::len);
            (pod, n)
        })
        .collect()
}

fn bound_claim_uid(d: &Deployment, name: &str) -> Option<String> {
    let pvc = get_json(&["pvc", name, "-n", &d.ns.name])?;
    (pvc["status"]["phase"] == "Bound").then(|| pvc["metadata"]["uid"].as_str().unwrap().to_string())
}

#[test]
fn scaling_2_4_2_under_load_moves_partitions_keeps_counts_and_volumes() {
    let mut d = Deployment::install("scale");
    d.apply_counter(2);
    d.wait_ready(2, Duration::from_secs(180));
    let load = Load::start(&d.input, &d.windows, 200, 300);
    std::thread::sleep(Duration::from_secs(5));

    d.apply_counter(4);
    let took = d.wait_ready(4, Duration::from_secs(240));
    println!("2 -> 4 workers Ready: {:.1} s", took.as_secs_f64());
    // Partitions moved: the new workers own some (the group may need a moment to settle).
    let settled =
        videocounter_e2e::cli::eventually("the new workers own partitions", Duration::from_secs(60), || {
            let o = owners(&d);
            let busy: BTreeSet<String> = o.iter().filter(|(_, n)| *n > 0).map(|(p, _)| p.clone()).collect();
            (busy.contains(&format!("{COUNTER}-2")) || busy.contains(&format!("{COUNTER}-3"))).then_some(o)
        });
    println!("owners after scaling out (pod, partitions): {settled:?}");
    let kept: Vec<(String, String)> = [2, 3]
        .iter()
        .map(|i| {
            let name = format!("data-{COUNTER}-{i}");
            let uid = bound_claim_uid(&d, &name).unwrap_or_else(|| panic!("{name} bound"));
            (name, uid)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));

    d.apply_counter(2);
    let took = d.wait_ready(2, Duration::from_secs(240));
    println!("4 -> 2 workers Ready: {:.1} s", took.as_secs_f64());
    let names: Vec<String> = d.worker_pods().iter().map(crate::support::pod_name).collect();
    assert_eq!(names, [format!("{COUNTER}-0"), format!("{COUNTER}-1")]);
    for (name, uid) in &kept {
        assert_eq!(
            bound_claim_uid(&d, name).as_ref(),
            Some(uid),
            "{name} is kept after scaling in"
        );
    }
    std::thread::sleep(Duration::from_secs(5));

    let sent = load.stop();
    assert_counts_exact(&d.windows, &sent.expected, Duration::from_secs(120), || {
        format!("late likes: {}\n{}", d.late_events(), d.worker_logs(30))
    });
    println!("{} likes counted exactly across 2 -> 4 -> 2", sent.likes);
}
