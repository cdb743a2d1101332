//! Where things are inside a worker pod: the paths and the port that the
//! worker configuration names (validate) and the StatefulSet mounts and
//! exposes (build). One place, so the two cannot disagree.

use std::path::PathBuf;

/// Where the ConfigMap is mounted in the worker container.
pub const CONFIG_DIR: &str = "/etc/videocounter";
/// File name of the worker configuration inside the ConfigMap.
pub const CONFIG_FILE: &str = "config.yaml";
/// Mount point of the persistent volume (RocksDB stores).
pub const DATA_DIR: &str = "/var/lib/videocounter";
/// Secrets are mounted under `<SECRETS_DIR>/<secret name>/<key>`.
pub const SECRETS_DIR: &str = "/var/run/secrets/videocounter";
/// The workers' HTTP port (health, readiness, metrics, queries).
pub const HTTP_PORT: i32 = 8080;

/// Path of a Secret key inside the worker container.
pub fn secret_file(secret: &str, key: &str) -> PathBuf {
    PathBuf::from(SECRETS_DIR).join(secret).join(key)
}
