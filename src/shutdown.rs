//! Shutting down: a handle to ask for it, and the signals that ask.
//!
//! Shutdown has two stages. The first (`shutdown`, or the first SIGINT or
//! SIGTERM) stops accepting and lets open connections finish for up to the
//! server's shutdown timeout. The second (`force`, or a second signal)
//! closes whatever is still open at once.

use tokio_util::sync::CancellationToken;

/// Asks a running server to stop. Cheap to clone; every clone controls the
/// same server.
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    graceful: CancellationToken,
    force: CancellationToken,
}

impl ShutdownHandle {
    /// A handle not yet triggered.
    pub fn new() -> ShutdownHandle {
        ShutdownHandle::default()
    }

    /// Stop accepting; let open connections finish (up to the timeout).
    pub fn shutdown(&self) {
        self.graceful.cancel();
    }

    /// Close every connection now. Implies [`shutdown`](Self::shutdown).
    pub fn force(&self) {
        self.graceful.cancel();
        self.force.cancel();
    }

    /// Whether [`shutdown`](Self::shutdown) was asked for.
    pub fn is_shutdown(&self) -> bool {
        self.graceful.is_cancelled()
    }

    /// Resolves once shutdown is asked for.
    pub async fn wait_shutdown(&self) {
        self.graceful.cancelled().await;
    }

    /// Resolves once a forced shutdown is asked for.
    pub async fn wait_force(&self) {
        self.force.cancelled().await;
    }
}

/// Turns SIGINT and SIGTERM into shutdown requests on `handle`: the first
/// is graceful, the second forces. The handlers are in place when this
/// returns (a signal from then on is never the default, fatal one); the
/// task that acts on them runs on the current tokio runtime.
pub fn on_signals(handle: ShutdownHandle) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        for stage in 0..2 {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if stage == 0 {
                handle.shutdown();
            } else {
                handle.force();
            }
        }
    });
    Ok(())
}
