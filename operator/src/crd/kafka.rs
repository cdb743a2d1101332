//! How to reach Kafka. Credentials are never inline: the spec names Secret
//! keys, the pods mount them as files, and the operator reads them with the API
//! for its own topic administration.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

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

/// Kafka `security.protocol`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No encryption, no authentication.
    #[default]
    Plaintext,
    /// TLS encryption (and client certificates when `tls.cert` is set).
    Ssl,
    /// SASL authentication without encryption.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
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

/// Kafka `sasl.mechanism`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    /// Plain user name and password (use with SASL_SSL).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
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

impl SecurityProtocol {
    pub fn to_protocol(self) -> videocounter_protocol::config::SecurityProtocol {
        use videocounter_protocol::config::SecurityProtocol as P;
        match self {
            Self::Plaintext => P::Plaintext,
            Self::Ssl => P::Ssl,
            Self::SaslPlaintext => P::SaslPlaintext,
            Self::SaslSsl => P::SaslSsl,
        }
    }
}

impl SaslMechanism {
    pub fn to_protocol(self) -> videocounter_protocol::config::SaslMechanism {
        use videocounter_protocol::config::SaslMechanism as M;
        match self {
            Self::Plain => M::Plain,
            Self::ScramSha256 => M::ScramSha256,
            Self::ScramSha512 => M::ScramSha512,
        }
    }
}
