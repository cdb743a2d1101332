//! Stage 1, dereference: fetch what the VideoCounter refers to, the Secrets
//! holding its Kafka credentials (the operator does not mount them: it reads
//! them with the API for its own topic administration). Fetching is the thin
//! I/O part; [`credentials`], which picks the keys out of the Secrets and
//! names a missing one, is pure.

use crate::crd::{KafkaSpec, SecretField};
use crate::reconcile::outcome::{Problem, StageResult};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use std::collections::BTreeMap;
use videocounter_shell::kafka::KafkaCredentials;

/// Reads the Secrets `kafka` refers to, each once. A missing Secret or key is
/// a problem with the VideoCounter, reported in its status.
pub async fn read_credentials(secrets: &Api<Secret>, kafka: &KafkaSpec) -> StageResult<KafkaCredentials> {
    let mut found = BTreeMap::new();
    for name in kafka.secret_names() {
        if let Some(secret) = secrets.get_opt(&name).await? {
            found.insert(name, secret);
        }
    }
    Ok(credentials(kafka, &found)?)
}

/// The credentials `kafka` refers to, taken from `secrets` (by name); the
/// first reference that cannot be resolved, in field order, is the problem.
pub fn credentials(
    kafka: &KafkaSpec,
    secrets: &BTreeMap<String, Secret>,
) -> Result<KafkaCredentials, Problem> {
    let mut creds = KafkaCredentials::default();
    for (field, reference) in kafka.secret_refs() {
        let Some(secret) = secrets.get(&reference.name) else {
            return Err(Problem::new(
                "SecretNotFound",
                format!(
                    "spec.{} refers to Secret {:?}, which does not exist",
                    field.path(),
                    reference.name
                ),
            ));
        };
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&reference.key))
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(&reference.key).cloned())
            });
        let Some(value) = value else {
            return Err(Problem::new(
                "SecretKeyNotFound",
                format!(
                    "spec.{} refers to key {:?} of Secret {:?}, which has no such key",
                    field.path(),
                    reference.key,
                    reference.name
                ),
            ));
        };
        let slot = match field {
            SecretField::TlsCa => &mut creds.ca_pem,
            SecretField::TlsCert => &mut creds.cert_pem,
            SecretField::TlsKey => &mut creds.key_pem,
            SecretField::SaslUsername => &mut creds.sasl_username,
            SecretField::SaslPassword => &mut creds.sasl_password,
        };
        *slot = Some(value);
    }
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::build::fixtures::sasl_ssl_kafka as kafka;

    fn secret(name: &str, data: serde_json::Value) -> (String, Secret) {
        let secret =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": data})).unwrap();
        (name.to_string(), secret)
    }

    #[test]
    fn every_reference_is_resolved_from_data() {
        // base64 of "PEM", "alice\n" and "s3cret".
        let secrets = BTreeMap::from([
            secret("kafka-ca", serde_json::json!({"ca.crt": "UEVN"})),
            secret(
                "kafka-user",
                serde_json::json!({"username": "YWxpY2UK", "password": "czNjcmV0"}),
            ),
        ]);
        let creds = credentials(&kafka(), &secrets).unwrap();
        assert_eq!(
            creds,
            KafkaCredentials {
                ca_pem: Some("PEM".into()),
                sasl_username: Some("alice\n".into()),
                sasl_password: Some("s3cret".into()),
                ..KafkaCredentials::default()
            }
        );
    }

    #[test]
    fn a_missing_secret_names_the_field_and_the_secret() {
        let secrets = BTreeMap::from([secret("kafka-ca", serde_json::json!({"ca.crt": "UEVN"}))]);
        let problem = credentials(&kafka(), &secrets).unwrap_err();
        assert_eq!(problem.reason, "SecretNotFound");
        assert_eq!(
            problem.message,
            "spec.kafka.sasl.username refers to Secret \"kafka-user\", which does not exist"
        );
    }

    #[test]
    fn a_missing_key_names_the_key_in_field_order() {
        let secrets = BTreeMap::from([
            secret("kafka-ca", serde_json::json!({"other": "UEVN"})),
            secret("kafka-user", serde_json::json!({})),
        ]);
        let problem = credentials(&kafka(), &secrets).unwrap_err();
        assert_eq!(problem.reason, "SecretKeyNotFound");
        assert_eq!(
            problem.message,
            "spec.kafka.tls.ca refers to key \"ca.crt\" of Secret \"kafka-ca\", which has no such key"
        );
    }

    #[test]
    fn a_plaintext_connection_needs_no_secret() {
        let kafka: KafkaSpec =
            serde_json::from_value(serde_json::json!({"bootstrapServers": "k:9092"})).unwrap();
        assert_eq!(
            credentials(&kafka, &BTreeMap::new()),
            Ok(KafkaCredentials::default())
        );
    }
}
