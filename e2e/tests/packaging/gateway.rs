//! deploy/gateway.yaml runs the real gateway with arguments it accepts: its
//! container arguments (listen address and file path moved to local ones)
//! on the worker configuration the operator rendered, until it is ready and
//! serves that configuration's topics.

use crate::process::Process;
use crate::support::{eventually, free_port, http_get, read_repo_file, yaml_documents};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub fn check_manifest_runs_the_gateway(worker_config: &str, input_topic: &str, dir: &Path) {
    let gateway_bin = crate::install::release_binary("videocounter-gateway");
    let deployment = yaml_documents(&read_repo_file("deploy/gateway.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("deploy/gateway.yaml has a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let config_file = dir.join("gateway-worker-config.yaml");
    std::fs::write(&config_file, worker_config).unwrap();
    let port = free_port();
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("gateway args")
        .iter()
        .map(|a| match a.as_str().unwrap() {
            a if a.starts_with("--listen=") => format!("--listen=127.0.0.1:{port}"),
            a if a.starts_with("--worker-config=") => format!("--worker-config={}", config_file.display()),
            a => a.to_string(),
        })
        .collect();
    let mut gateway = Process::start(Command::new(gateway_bin).args(&args), dir.join("gateway.log"));
    eventually(
        "the gateway started from deploy/gateway.yaml to be ready",
        Duration::from_secs(30),
        || {
            gateway.assert_running("the gateway");
            http_get(port, "/readyz")
        },
    );
    let config: Value = serde_json::from_str(&http_get(port, "/config").expect("/config")).unwrap();
    assert_eq!(
        config["input_topic"], input_topic,
        "the gateway reads the operator's worker configuration"
    );
    gateway.terminate();
}
