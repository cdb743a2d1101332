//! The CEL rules of the CRD, written so that `kubectl apply` prints one
//! message per mistake, quoting the bad value:
//!
//! - The API server shows a failed rule as `<path>: Invalid value: "<type>"`
//!   (`""` for int-or-string, `"object"`, `"string"`), never the value itself,
//!   so rules report as `Forbidden` or `Required` and quote the value in a
//!   `messageExpression`.
//! - A rule that converts a string the schema's pattern already rejected would
//!   add a `type conversion error` of its own, so every `duration()` is
//!   guarded by the same pattern.

use kube::core::{Message, Reason, Rule};

/// The pattern of every duration field (Go durations in ms, s, m, h).
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

/// CEL: `text` is a duration the pattern accepts.
fn is_duration(text: &str) -> String {
    format!("{text}.matches('{DURATION_PATTERN}')")
}

/// On a duration field: the duration is above zero.
pub fn positive_duration(field: &str) -> Rule {
    Rule::new(format!(
        "!{} || duration(self) > duration('0s')",
        is_duration("self")
    ))
    .message(Message::Expression(format!(
        "'{field} \"' + self + '\" must be a positive duration, such as 100ms, 10s or 1m'"
    )))
    .reason(Reason::FieldValueForbidden)
}

/// On the windows list: no two windows have the same size (`1m` = `60s`).
/// Checked only once every size is a duration (the pattern reports the
/// others). The message cannot quote the sizes: the API server refuses a
/// `messageExpression` that walks a list (its cost estimate is too high).
pub fn distinct_window_sizes() -> Rule {
    Rule::new(format!(
        "!self.all(w, {}) || self.all(w, self.filter(x, duration(x.size) == duration(w.size)).size() == 1)",
        is_duration("w.size")
    ))
    .message("window sizes must be distinct (\"1m\" and \"60s\" are the same size)")
    .reason(Reason::FieldValueForbidden)
}

/// On `rollout.maxUnavailable` (int or string): a count ≥ 1 or 1%..100%.
pub fn max_unavailable() -> Rule {
    Rule::new("type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')")
        .message(Message::Expression(
            "'rollout.maxUnavailable ' + (type(self) == int ? string(self) : '\"' + string(self) + '\"') + \
             ' is not allowed: use a pod count of at least 1 or a percentage from 1% to 100%'"
                .into(),
        ))
        .reason(Reason::FieldValueForbidden)
}

/// On `topics.partitions`: fixed once created. (A `messageExpression` with
/// the old and new counts costs too much for the API server's estimate:
/// `string(int)` has no size bound.)
pub fn partitions_fixed() -> Rule {
    Rule::new("self == oldSelf")
        .message(
            "topics.partitions cannot change: it decides which partition (and store) every video id belongs to; \
             create a new VideoCounter with another applicationId instead",
        )
        .reason(Reason::FieldValueForbidden)
}

/// On `storage`: size and class fixed once created.
pub fn storage_fixed() -> Rule {
    Rule::new(
        "self.size == oldSelf.size && (has(self.storageClassName) ? self.storageClassName : '') == \
         (has(oldSelf.storageClassName) ? oldSelf.storageClassName : '')",
    )
    .message("storage.size and storage.storageClassName cannot change: a StatefulSet's volume claims are immutable")
    .reason(Reason::FieldValueForbidden)
}

/// On `kafka`: the SASL protocols need `kafka.sasl`.
pub fn sasl_needs_credentials() -> Rule {
    Rule::new("!self.securityProtocol.startsWith('SASL') || has(self.sasl)")
        .message(Message::Expression(
            "'kafka.securityProtocol ' + self.securityProtocol + \
             ' needs kafka.sasl (the mechanism and the Secrets holding the user name and password)'"
                .into(),
        ))
        .field_path(".sasl")
        .reason(Reason::FieldValueRequired)
}

/// On `kafka.tls`: a client certificate and its key come together.
pub fn tls_cert_and_key() -> Rule {
    Rule::new("has(self.cert) == has(self.key)")
        .message(Message::Expression(
            "has(self.cert) ? 'kafka.tls.cert is set without kafka.tls.key: a client certificate needs its key' \
             : 'kafka.tls.key is set without kafka.tls.cert: a client key needs its certificate'"
                .into(),
        ))
        .reason(Reason::FieldValueRequired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guards_use_the_pattern_of_every_duration_field() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(crate::crd::VideoCounter::crd()).unwrap();
        let spec =
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        for field in [
            &spec["commitInterval"],
            &spec["grace"],
            &spec["retention"],
            &spec["windows"]["items"]["properties"]["size"],
            &spec["windows"]["items"]["properties"]["grace"],
            &spec["windows"]["items"]["properties"]["retention"],
        ] {
            assert_eq!(field["pattern"], DURATION_PATTERN, "{field}");
        }
    }

    #[test]
    fn rules_never_report_as_invalid_value() {
        // `Invalid value` would print the schema type ("", "object") instead of the value.
        for rule in [
            positive_duration("x"),
            distinct_window_sizes(),
            max_unavailable(),
            partitions_fixed(),
            storage_fixed(),
            sasl_needs_credentials(),
            tls_cert_and_key(),
        ] {
            assert!(
                matches!(
                    rule.reason,
                    Some(Reason::FieldValueForbidden | Reason::FieldValueRequired)
                ),
                "{rule:?}"
            );
        }
    }
}
