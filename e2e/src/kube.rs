//! Kubernetes helpers: a client for the test ground's kube-apiserver and polling.

use std::future::Future;
use std::time::{Duration, Instant};

/// A client from the kubeconfig the test-ground scripts write (`KUBECONFIG`).
pub async fn client() -> ::kube::Client {
    crate::required_env("KUBECONFIG");
    ::kube::Client::try_default()
        .await
        .expect("kube client from KUBECONFIG")
}

/// Polls `check` every 200 ms until it returns `Some`, or fails naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
