//! Figures for the README, not assertions of speed (ignored by default):
//! apply → all workers Ready for 2 and 4 real workers, a 50% rolling
//! restart of 4 workers under load (total time, longest partition stall,
//! rebalances), a pod restart with its volume → Ready, and the worker pods'
//! memory under load. Run with
//! `cargo test --release -p videocounter-e2e --test real_nodes -- --ignored --nocapture figures`.

use crate::load::Load;
use crate::restart::rolling_restart_under_load;
use crate::support::{COUNTER, Deployment, pod_name};
use std::time::{Duration, Instant};
use videocounter_e2e::nodes::{container_memory, container_processes_rss};

#[test]
#[ignore = "figures: run with --ignored --nocapture"]
fn figures_on_real_nodes() {
    let mut lines = Vec::new();
    {
        let mut d = Deployment::install("fig-2");
        let applied = Instant::now();
        d.apply_counter(2);
        d.wait_ready(2, Duration::from_secs(180));
        lines.push(format!(
            "apply -> 2 workers Ready (stores restored): {:.1} s",
            applied.elapsed().as_secs_f64()
        ));

        let load = Load::start(&d.input, &d.windows, 1_000, 1_000);
        std::thread::sleep(Duration::from_secs(30));
        for pod in d.worker_pods() {
            let node = pod["spec"]["nodeName"].as_str().unwrap();
            let (ws, _) = container_memory(node, &d.ns.name, &pod_name(&pod), "worker").unwrap();
            let rss = container_processes_rss(
                pod["status"]["containerStatuses"][0]["containerID"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            lines.push(format!(
                "worker pod {} after 30 s of 1000 likes/s over 1000 videos: working set {} MiB (kubelet), process RSS {} MiB",
                pod_name(&pod),
                ws >> 20,
                rss >> 20
            ));
        }
        // A pod restart with its volume, under that load.
        let replaced = d.replace_pod(&format!("{COUNTER}-0"));
        lines.push(format!(
            "pod deleted -> replacement Ready on its volume (under load): {:.1} s",
            replaced.as_secs_f64()
        ));
        load.stop();
    }
    {
        let mut d = Deployment::install("fig-4");
        let applied = Instant::now();
        d.apply_counter(4);
        d.wait_ready(4, Duration::from_secs(240));
        lines.push(format!(
            "apply -> 4 workers Ready (stores restored): {:.1} s",
            applied.elapsed().as_secs_f64()
        ));
        lines.push(format!(
            "4 workers, 300 likes/s: {}",
            rolling_restart_under_load(&d, 4)
        ));
    }
    println!("\nFIGURES (real nodes)\n{}", lines.join("\n"));
}
