//! The operator's error type. Problems with a VideoCounter itself (a bad spec,
//! Kafka unreachable) are not errors: they become its `Degraded` condition.
//! Errors are failures to talk to the API server; the reconcile is retried.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("VideoCounter {0} has no namespace")]
    MissingNamespace(String),

    #[error("StatefulSet {0} has no status yet")]
    StatefulSetNotObserved(String),
}

impl Error {
    /// Label of the `videocounter_operator_reconcile_errors_total` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kube(kube::Error::Api(_)) => "api",
            Self::Kube(_) => "client",
            Self::MissingNamespace(_) => "missing_namespace",
            Self::StatefulSetNotObserved(_) => "not_observed",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
