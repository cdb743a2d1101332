//! Start-up failures a newcomer meets, explained in one line each: what is
//! missing and what to run (pure: API errors in, sentences out). Anything
//! else keeps its own message.

use kube::core::Status;

/// What a failed request at start-up was for, to say what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Listing VideoCounters (in `--namespace`, or everywhere).
    ListVideoCounters,
    /// Taking the leader Lease.
    LeaderLease,
}

/// The API server's answer, if `error` is one.
fn api_status(error: &kube::Error) -> Option<&Status> {
    match error {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// The namespace a `namespaces "x" not found` answer is about.
fn missing_namespace(status: &Status) -> Option<&str> {
    let details = status.details.as_ref()?;
    (status.code == 404 && details.kind == "namespaces" && !details.name.is_empty())
        .then_some(details.name.as_str())
}

/// One line for a start-up failure the user can fix, or `None` when the
/// error is not one of those (it is then reported as it is).
pub fn explain(step: Step, error: &kube::Error) -> Option<String> {
    let status = api_status(error)?;
    if let Some(namespace) = missing_namespace(status) {
        let why = match step {
            Step::LeaderLease => {
                " (the operator keeps its leader Lease there; --lease-namespace chooses another)"
            }
            Step::ListVideoCounters => "",
        };
        return Some(format!(
            "namespace {namespace:?} does not exist: create it with `kubectl create namespace {namespace}`{why}"
        ));
    }
    match (step, status.code) {
        (Step::ListVideoCounters, 404) => Some(
            "the VideoCounter CRD is not installed: run `kubectl apply --server-side -f crds/videocounter.yaml` \
             (the Helm chart installs it too)"
                .to_string(),
        ),
        (_, 403) => {
            let message = status.message.trim();
            Some(format!(
                "not allowed: {message}: grant the operator the RBAC rules the README lists (Operator, RBAC; the Helm \
                 chart creates them)"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(value: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_value(value).unwrap()))
    }

    fn namespace_not_found(name: &str) -> kube::Error {
        api_error(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("namespaces \"{name}\" not found"), "reason": "NotFound",
            "details": {"name": name, "kind": "namespaces"}, "code": 404
        }))
    }

    #[test]
    fn a_missing_lease_namespace_says_what_to_create() {
        let line = explain(Step::LeaderLease, &namespace_not_found("media")).unwrap();
        assert_eq!(
            line,
            "namespace \"media\" does not exist: create it with `kubectl create namespace media` (the operator \
             keeps its leader Lease there; --lease-namespace chooses another)"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_missing_crd_says_how_to_install_it() {
        let error = api_error(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "the server could not find the requested resource", "reason": "NotFound",
            "details": {}, "code": 404
        }));
        let line = explain(Step::ListVideoCounters, &error).unwrap();
        assert!(line.contains("VideoCounter CRD is not installed"), "{line}");
        assert!(
            line.contains("kubectl apply --server-side -f crds/videocounter.yaml"),
            "{line}"
        );
        // The same 404 for a Lease is not about the CRD.
        assert_eq!(explain(Step::LeaderLease, &error), None);
    }

    #[test]
    fn forbidden_quotes_the_api_server_and_points_at_the_rbac() {
        let error = api_error(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "videocounters.videocounter.io is forbidden: User \"bob\" cannot list resource \"videocounters\""
        }));
        let line = explain(Step::ListVideoCounters, &error).unwrap();
        assert!(
            line.starts_with("not allowed: videocounters.videocounter.io is forbidden: User \"bob\""),
            "{line}"
        );
        assert!(line.contains("RBAC"), "{line}");
    }

    #[test]
    fn other_errors_are_left_alone() {
        let conflict =
            api_error(serde_json::json!({"status": "Failure", "code": 409, "message": "conflict"}));
        assert_eq!(explain(Step::LeaderLease, &conflict), None);
        let not_api = kube::Error::LinesCodecMaxLineLengthExceeded;
        assert_eq!(explain(Step::ListVideoCounters, &not_api), None);
    }
}
