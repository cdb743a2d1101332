//! Starting the operator the way the README shows, before the namespace
//! exists: it stops at once with one line saying what is missing and what
//! to run, not a debug dump of the API server's answer.

mod common;

use common::install_crd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use videocounter_e2e::unique_name;

#[tokio::test]
async fn a_missing_namespace_is_one_line_saying_what_to_create() {
    let client = videocounter_e2e::kube::client().await;
    install_crd(&client).await;
    let missing = unique_name("op-missing");
    let mut child = Command::new(env!("CARGO_BIN_EXE_videocounter-operator"))
        .args(["--namespace", &missing, "--http-listen", "127.0.0.1:0"])
        .env("KUBECONFIG", videocounter_e2e::required_env("KUBECONFIG"))
        .env_remove("POD_NAMESPACE")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting videocounter-operator");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the operator kept running although namespace {missing} does not exist");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    assert!(
        errors[0].ends_with(&format!(
            "namespace \"{missing}\" does not exist: create it with `kubectl create namespace {missing}` \
             (the operator keeps its leader Lease there; --lease-namespace chooses another)"
        )),
        "{stderr}"
    );
    for noise in ["ApiError", "Status {", "Kube error", "code: 404"] {
        assert!(!stderr.contains(noise), "{noise:?} in:\n{stderr}");
    }
}
