//! How to reach Kafka. Credentials are never inline: the spec names Secret
//! keys, the pods mount them as files, and the operator reads them with the API
//! for its own topic administration.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
pub use videocounter_protocol::config::{SaslMechanism, SecurityProtocol};

/// Connection to the Kafka cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = super::rules::sasl_needs_credentials())]
pub struct KafkaSpec {
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    #[schemars(length(min = 1, max = 2048))]
    pub bootstrap_servers: String,

    /// Protocol used to talk to the brokers.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,

    /// TLS material (CA, client certificate and key) from Secrets, for the SSL
    /// and SASL_SSL protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,

    /// SASL credentials from Secrets, for the SASL_PLAINTEXT and SASL_SSL protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<SaslSpec>,
}

/// TLS files, each taken from a key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = super::rules::tls_cert_and_key())]
pub struct KafkaTls {
    /// PEM CA certificate(s) that signed the brokers' certificates. Defaults to
    /// the system trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretKeyRef>,

    /// PEM client certificate, for brokers that require client authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretKeyRef>,

    /// PEM private key of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretKeyRef>,
}

/// SASL credentials, each taken from a key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SaslSpec {
    /// SASL mechanism.
    pub mechanism: SaslMechanism,

    /// The user name.
    pub username: SecretKeyRef,

    /// The password.
    pub password: SecretKeyRef,
}

/// One key of a Secret in the VideoCounter's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(min = 1, max = 253)
    )]
    pub name: String,

    /// Key within the Secret.
    #[schemars(regex(pattern = r"^[-._a-zA-Z0-9]+$"), length(min = 1, max = 253))]
    pub key: String,
}

/// A field of the connection that names a Secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    TlsCa,
    TlsCert,
    TlsKey,
    SaslUsername,
    SaslPassword,
}

impl SecretField {
    /// The field's path below `spec`, for messages.
    pub fn path(self) -> &'static str {
        match self {
            Self::TlsCa => "kafka.tls.ca",
            Self::TlsCert => "kafka.tls.cert",
            Self::TlsKey => "kafka.tls.key",
            Self::SaslUsername => "kafka.sasl.username",
            Self::SaslPassword => "kafka.sasl.password",
        }
    }
}

impl KafkaSpec {
    /// Every Secret key the connection refers to, with the field that names
    /// it, in field order (TLS CA, certificate, key, SASL user name, password).
    pub fn secret_refs(&self) -> Vec<(SecretField, &SecretKeyRef)> {
        let mut refs = Vec::new();
        if let Some(tls) = &self.tls {
            for (field, r) in [
                (SecretField::TlsCa, &tls.ca),
                (SecretField::TlsCert, &tls.cert),
                (SecretField::TlsKey, &tls.key),
            ] {
                refs.extend(r.as_ref().map(|r| (field, r)));
            }
        }
        if let Some(sasl) = &self.sasl {
            refs.extend([
                (SecretField::SaslUsername, &sasl.username),
                (SecretField::SaslPassword, &sasl.password),
            ]);
        }
        refs
    }

    /// Names of the Secrets the connection refers to, each once, sorted.
    pub fn secret_names(&self) -> BTreeSet<String> {
        self.secret_refs()
            .into_iter()
            .map(|(_, r)| r.name.clone())
            .collect()
    }
}
