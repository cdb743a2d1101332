//! librdkafka settings from a `KafkaConnection`: brokers, security protocol,
//! TLS material and SASL credentials.
//!
//! The workers and the gateway take TLS material and SASL credentials from
//! the files the connection names (Secrets mounted into their pods); the
//! operator reads the same Secrets through the API and passes their values.
//! Property names are librdkafka's canonical ones (CONFIGURATION.md):
//! `sasl.mechanisms`, of which `sasl.mechanism` is only an alias.

use rdkafka::config::ClientConfig;
use std::path::{Path, PathBuf};
use videocounter_protocol::config::KafkaConnection;

/// TLS material and SASL credentials as values, for a client that has no
/// files (the operator reads them from Secrets with the API).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KafkaCredentials {
    pub ca_pem: Option<String>,
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
}

/// Where a client's TLS material and SASL credentials come from.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// The files the connection names: TLS by path, SASL read now.
    Files,
    /// Values read elsewhere; the connection's file names are ignored.
    Values(&'a KafkaCredentials),
}

/// A SASL credential file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {what} from {}: {source}", path.display())]
pub struct SecretFileError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The settings every client of `conn` starts from: `bootstrap.servers`,
/// `client.id`, `security.protocol`, TLS for the SSL protocols and SASL when
/// the connection has it.
pub fn client_config(
    conn: &KafkaConnection,
    client_id: &str,
    credentials: Credentials<'_>,
) -> Result<ClientConfig, SecretFileError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &conn.bootstrap_servers)
        .set("client.id", client_id)
        .set("security.protocol", conn.security_protocol.as_librdkafka());
    // TLS material matters only to the SSL protocols (librdkafka ignores it otherwise).
    let tls = matches!(
        conn.security_protocol,
        videocounter_protocol::config::SecurityProtocol::Ssl
            | videocounter_protocol::config::SecurityProtocol::SaslSsl
    );
    match credentials {
        Credentials::Files => {
            if let (true, Some(files)) = (tls, &conn.tls) {
                for (key, file) in [
                    ("ssl.ca.location", &files.ca_file),
                    ("ssl.certificate.location", &files.cert_file),
                    ("ssl.key.location", &files.key_file),
                ] {
                    if let Some(path) = file {
                        c.set(key, path.display().to_string());
                    }
                }
            }
            if let Some(sasl) = &conn.sasl {
                c.set("sasl.mechanisms", sasl.mechanism.as_librdkafka())
                    .set(
                        "sasl.username",
                        read_secret("SASL username", &sasl.username_file)?,
                    )
                    .set(
                        "sasl.password",
                        read_secret("SASL password", &sasl.password_file)?,
                    );
            }
        }
        Credentials::Values(values) => {
            if tls {
                for (key, value) in [
                    ("ssl.ca.pem", &values.ca_pem),
                    ("ssl.certificate.pem", &values.cert_pem),
                    ("ssl.key.pem", &values.key_pem),
                ] {
                    if let Some(v) = value {
                        c.set(key, v);
                    }
                }
            }
            if let Some(sasl) = &conn.sasl {
                c.set("sasl.mechanisms", sasl.mechanism.as_librdkafka());
                if let Some(u) = &values.sasl_username {
                    c.set("sasl.username", without_line_end(u));
                }
                if let Some(p) = &values.sasl_password {
                    c.set("sasl.password", without_line_end(p));
                }
            }
        }
    }
    Ok(c)
}

/// `kubectl create secret --from-file` keeps the file's final newline; a
/// user name or password never ends in one.
fn without_line_end(text: &str) -> &str {
    text.trim_end_matches(['\r', '\n'])
}

fn read_secret(what: &'static str, path: &Path) -> Result<String, SecretFileError> {
    std::fs::read_to_string(path)
        .map(|text| without_line_end(&text).to_owned())
        .map_err(|source| SecretFileError {
            what,
            path: path.to_owned(),
            source,
        })
}

/// A plaintext connection to `bootstrap_servers`, with every other default.
pub fn plaintext(bootstrap_servers: &str) -> KafkaConnection {
    videocounter_protocol::WorkerConfig::with_bootstrap(bootstrap_servers).kafka
}

#[cfg(test)]
mod tests {
    use super::*;
    use videocounter_protocol::config::{SaslFiles, SaslMechanism, SecurityProtocol, TlsFiles};

    fn sasl_ssl(dir: &Path) -> KafkaConnection {
        let mut conn = plaintext("k:9093");
        conn.security_protocol = SecurityProtocol::SaslSsl;
        conn.tls = Some(TlsFiles {
            ca_file: Some(dir.join("ca.crt")),
            cert_file: None,
            key_file: None,
        });
        conn.sasl = Some(SaslFiles {
            mechanism: SaslMechanism::ScramSha512,
            username_file: dir.join("username"),
            password_file: dir.join("password"),
        });
        conn
    }

    /// librdkafka itself accepts the settings (an unknown property or value
    /// fails here) and reads them back under their canonical names.
    fn native(c: &ClientConfig, key: &str) -> String {
        c.create_native_config()
            .expect("librdkafka accepts every property")
            .get(key)
            .unwrap()
    }

    #[test]
    fn files_give_tls_locations_and_the_sasl_credentials_they_hold() {
        let dir = std::env::temp_dir().join(format!("videocounter-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("username"), "alice\n").unwrap();
        std::fs::write(dir.join("password"), "s3cret\r\n").unwrap();
        let c = client_config(&sasl_ssl(&dir), "worker-0", Credentials::Files).unwrap();
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.mechanism"), None, "only the canonical name");
        assert_eq!(c.get("sasl.username"), Some("alice"));
        assert_eq!(c.get("sasl.password"), Some("s3cret"));
        let ca = dir.join("ca.crt").display().to_string();
        assert_eq!(c.get("ssl.ca.location"), Some(ca.as_str()));
        assert_eq!(c.get("client.id"), Some("worker-0"));
        assert_eq!(native(&c, "sasl.mechanisms"), "SCRAM-SHA-512");
        assert_eq!(native(&c, "security.protocol"), "sasl_ssl");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_credential_file_is_named() {
        let dir = std::env::temp_dir().join("videocounter-shell-missing");
        let e = client_config(&sasl_ssl(&dir), "gw", Credentials::Files).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with(&format!(
                "cannot read the SASL username from {}",
                dir.join("username").display()
            )),
            "{message}"
        );
    }

    #[test]
    fn values_give_pem_settings_and_trimmed_credentials() {
        let conn = sasl_ssl(Path::new("/nowhere"));
        let values = KafkaCredentials {
            ca_pem: Some("PEM".into()),
            sasl_username: Some("alice\n".into()),
            sasl_password: Some("secret".into()),
            ..KafkaCredentials::default()
        };
        let c = client_config(&conn, "videocounter-operator", Credentials::Values(&values)).unwrap();
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("alice"));
        assert_eq!(c.get("ssl.ca.pem"), Some("PEM"));
        assert_eq!(c.get("ssl.ca.location"), None, "files are not used");
        assert_eq!(native(&c, "sasl.username"), "alice");
    }

    #[test]
    fn tls_material_is_left_out_without_tls() {
        let mut conn = sasl_ssl(Path::new("/nowhere"));
        conn.security_protocol = SecurityProtocol::Plaintext;
        conn.sasl = None;
        let values = KafkaCredentials {
            ca_pem: Some("PEM".into()),
            ..KafkaCredentials::default()
        };
        let c = client_config(&conn, "x", Credentials::Values(&values)).unwrap();
        assert_eq!(c.get("ssl.ca.pem"), None);
        let c = client_config(&conn, "x", Credentials::Files).unwrap();
        assert_eq!(c.get("ssl.ca.location"), None);
        assert_eq!(native(&c, "security.protocol"), "plaintext");
    }
}
