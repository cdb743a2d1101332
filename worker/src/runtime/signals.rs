//! Signals, as in the Faust workers this replaces: SIGTERM and SIGINT ask for
//! a warm shutdown (commit or abort the batch, close the stores, leave the
//! group), bounded by `--shutdown-timeout`; a second one, or SIGQUIT, is a
//! cold shutdown (exit at once: nothing uncommitted is ever visible, the
//! next instance aborts the open transaction). SIGUSR1 asks the processing
//! thread to log a dump.

use crate::runtime::state::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The handlers, installed first thing at start: a signal that arrives while
/// the worker is still starting is kept and acted on once it runs.
pub struct Signals {
    term: Signal,
    int: Signal,
    quit: Signal,
    usr1: Signal,
}

impl Signals {
    /// Must run inside the Tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    pub async fn listen(mut self, shared: Arc<Shared>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => warm_or_cold(&shared, "SIGTERM"),
                _ = self.int.recv() => warm_or_cold(&shared, "SIGINT"),
                _ = self.quit.recv() => cold("SIGQUIT"),
                _ = self.usr1.recv() => {
                    tracing::info!("SIGUSR1: dumping state");
                    shared.request_dump();
                }
            }
        }
    }
}

fn warm_or_cold(shared: &Arc<Shared>, signal: &str) {
    if shared.shutdown_requested() {
        cold(signal);
    }
    let timeout = shared.settings.shutdown_timeout;
    tracing::info!(timeout_s = timeout.as_secs_f64(), "{signal}: warm shutdown");
    shared.request_shutdown();
    watchdog(timeout);
}

fn cold(signal: &str) -> ! {
    tracing::warn!("{signal}: cold shutdown, exiting now");
    std::process::exit(0);
}

/// Ends the process when the warm shutdown takes longer than `timeout` (a
/// broker away, a restore that does not stop): exactly-once does not depend
/// on it finishing.
fn watchdog(timeout: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        tracing::error!(
            timeout_s = timeout.as_secs_f64(),
            "warm shutdown did not finish in time; exiting (an open transaction is aborted by the broker or the next instance)"
        );
        std::process::exit(0);
    });
}
