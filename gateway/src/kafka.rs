//! librdkafka client settings shared by the gateway's producer and consumer
//! and by the load generator.

use anyhow::Context;
use rdkafka::config::ClientConfig;
use videocounter_protocol::config::KafkaConnection;

/// Connection settings for `conn`: brokers, and TLS / SASL from files when
/// the worker configuration names them (the same Secrets the workers mount).
pub fn client_config(conn: &KafkaConnection, client_id: &str) -> anyhow::Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &conn.bootstrap_servers)
        .set("client.id", client_id)
        .set("security.protocol", conn.security_protocol.as_librdkafka());
    if let Some(tls) = &conn.tls {
        for (key, file) in [
            ("ssl.ca.location", &tls.ca_file),
            ("ssl.certificate.location", &tls.cert_file),
            ("ssl.key.location", &tls.key_file),
        ] {
            if let Some(path) = file {
                c.set(key, path.display().to_string());
            }
        }
    }
    if let Some(sasl) = &conn.sasl {
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .with_context(|| format!("reading the SASL {what} from {}", path.display()))
        };
        c.set("sasl.mechanism", sasl.mechanism.as_librdkafka())
            .set("sasl.username", read(&sasl.username_file, "username")?)
            .set("sasl.password", read(&sasl.password_file, "password")?);
    }
    Ok(c)
}

/// A plaintext connection to `bootstrap_servers`.
pub fn plaintext(bootstrap_servers: &str) -> KafkaConnection {
    videocounter_protocol::WorkerConfig::with_bootstrap(bootstrap_servers).kafka
}
