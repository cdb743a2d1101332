//! SIGTERM and SIGINT ask for a warm shutdown (finish the batch, commit,
//! close); SIGUSR1 asks the processing thread to log a dump.

use crate::state::Shared;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

pub async fn listen(shared: Arc<Shared>) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: warm shutdown");
                shared.request_shutdown();
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: warm shutdown");
                shared.request_shutdown();
            }
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: dumping state");
                shared.request_dump();
            }
        }
    }
}
