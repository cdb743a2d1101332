//! The metric names the chart's PrometheusRule and Grafana dashboard query
//! must exist: checked against real scrapes of the operator and of a worker
//! that is running, with partitions, on the configuration the operator
//! rendered.

use crate::process::Process;
use crate::support::{
    CHART, eventually, exposed_metric_names, free_port, helm, http_get, read_repo_file,
    referenced_metric_names, run, stdout,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use videocounter_e2e::kafka;

/// Labelled families with no series until their first event, so a healthy
/// scrape may lack them: (metric, source file, registration it must have).
const APPEAR_ON_FIRST_EVENT: &[(&str, &str, &str)] = &[(
    "videocounter_operator_reconcile_errors_total",
    "operator/src/metrics.rs",
    "\"reconcile_errors\"",
)];

/// Worker families that appear once it holds partitions and has consumed.
const WORKER_FAMILIES_AFTER_ASSIGNMENT: &[&str] = &[
    "videocounter_consumer_lag_records",
    "videocounter_restore_remaining_records",
];

pub fn check_against_real_scrapes(
    operator_metrics: &str,
    worker_config: &str,
    input_topic: &str,
    dir: &Path,
) {
    let worker_metrics = scrape_a_busy_worker(worker_config, input_topic, dir);
    let mut exposed = exposed_metric_names(operator_metrics);
    exposed.extend(exposed_metric_names(&worker_metrics));

    let rules = stdout(&run(helm().args([
        "template",
        "rel",
        CHART,
        "--set",
        "prometheusRule.enabled=true",
    ])));
    let dashboard = read_repo_file("charts/videocounter-operator/dashboards/videocounter.json");
    for (what, text) in [("PrometheusRule", rules), ("dashboard", dashboard)] {
        let referenced = referenced_metric_names(&text);
        assert!(
            referenced.len() >= 8,
            "{what} refers to too few metrics: {referenced:?}"
        );
        let unknown: BTreeSet<&String> = referenced
            .iter()
            .filter(|name| !exposed.contains(*name) && !registered_for_first_event(name))
            .collect();
        assert!(
            unknown.is_empty(),
            "the {what} queries metrics nobody exposes: {unknown:?}\nexposed: {exposed:?}"
        );
    }
}

fn registered_for_first_event(name: &str) -> bool {
    APPEAR_ON_FIRST_EVENT
        .iter()
        .any(|(metric, file, registration)| *metric == name && read_repo_file(file).contains(registration))
}

/// Runs the worker, feeds its input a few likes, and returns a scrape that
/// shows the families a worker only has once it holds partitions.
fn scrape_a_busy_worker(config: &str, input_topic: &str, dir: &Path) -> String {
    let worker_bin = crate::install::release_binary("videocounter-worker");
    let config_file = dir.join("worker.yaml");
    std::fs::write(&config_file, config).unwrap();
    let port = free_port();
    let mut worker = Process::start(
        Command::new(worker_bin)
            .arg("--config")
            .arg(&config_file)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--http-listen",
                &format!("127.0.0.1:{port}"),
                "--instance-id",
                "metrics-check-0",
            ]),
        dir.join("worker.log"),
    );
    let producer: BaseProducer = kafka::client_config().create().expect("producer");
    for i in 0..20 {
        producer
            .send(BaseRecord::<(), str>::to(input_topic).payload(&format!("video-{}", i % 4)))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let scrape = eventually(
        "the worker's /metrics with its partitions' lag and restore series",
        Duration::from_secs(60),
        || {
            worker.assert_running("the worker");
            let text = http_get(port, "/metrics")?;
            let names = exposed_metric_names(&text);
            WORKER_FAMILIES_AFTER_ASSIGNMENT
                .iter()
                .all(|f| names.contains(*f))
                .then_some(text)
        },
    );
    worker.terminate();
    scrape
}
