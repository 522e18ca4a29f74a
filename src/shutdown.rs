//! Shutting down: a handle to ask for it, and the signals that ask.
//!
//! Shutdown has two stages. The first (`shutdown`, or the first SIGINT,
//! SIGTERM or SIGHUP) stops accepting and lets open connections finish for
//! up to the server's shutdown timeout. The second (`force`, a second such
//! signal, or SIGQUIT) closes whatever is still open at once.
//!
//! ```
//! use echoes::ShutdownHandle;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let handle = ShutdownHandle::new();
//! let waiter = handle.clone();
//! let waiting = tokio::spawn(async move { waiter.wait_shutdown().await });
//! handle.shutdown(); // what the first SIGTERM does, from code
//! waiting.await.unwrap();
//! assert!(handle.is_shutdown());
//! # }
//! ```

use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

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

/// What a signal asks of a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asks {
    /// Stop accepting and drain; a second such signal forces.
    Stop,
    /// Close everything now.
    Force,
    /// Nothing: logged, so that a stray `kill -USR1` is seen, not fatal.
    Nothing,
}

/// The signals a server handles: what each asks, and whether it stays
/// ignored when it was ignored at start-up (see [`on_signals`]).
const HANDLED: [(libc::c_int, &str, Asks, bool); 6] = [
    (libc::SIGINT, "SIGINT", Asks::Stop, true),
    (libc::SIGTERM, "SIGTERM", Asks::Stop, false),
    (libc::SIGHUP, "SIGHUP", Asks::Stop, true),
    (libc::SIGQUIT, "SIGQUIT", Asks::Force, true),
    (libc::SIGUSR1, "SIGUSR1", Asks::Nothing, true),
    (libc::SIGUSR2, "SIGUSR2", Asks::Nothing, true),
];

/// Whether `signo` is ignored (`SIG_IGN`) now, before any handler of ours:
/// set so by `nohup` (SIGHUP), or by a shell starting a background job
/// without job control (SIGINT, SIGQUIT).
fn ignored_at_start(signo: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is a valid out-parameter, and a null
    // `act` makes sigaction only read the current disposition.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signo, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Logs the signals that were ignored at start-up and stay so. SIGINT and
/// SIGQUIT are one warning naming the signals that do stop the server: a
/// script that starts it in the background leaves them ignored, and
/// `kill -INT` then does nothing. SIGHUP under `nohup`, and SIGUSR1 and
/// SIGUSR2, are asked for and only debug.
fn say_ignored(ignored: &[libc::c_int]) {
    let name = |signo: &libc::c_int| HANDLED.iter().find(|h| h.0 == *signo).map_or("?", |h| h.1);
    let (warn, quiet): (Vec<_>, Vec<_>) = ignored
        .iter()
        .partition(|s| matches!(**s, libc::SIGINT | libc::SIGQUIT));
    for signo in quiet {
        debug!(
            name = "main",
            "{} was ignored at start-up: it stays ignored",
            name(signo)
        );
    }
    if warn.is_empty() {
        return;
    }
    let working: Vec<&str> = HANDLED
        .iter()
        .filter(|(s, _, asks, _)| !ignored.contains(s) && !matches!(asks, Asks::Nothing))
        .map(|(_, n, _, _)| *n)
        .collect();
    let names: Vec<&str> = warn.iter().map(|s| name(s)).collect();
    let (were, stay) = match names.len() {
        1 => ("was ignored", "it stays"),
        _ => ("were ignored", "they stay"),
    };
    let names = names.join(" and ");
    tracing::warn!(
        name = "main",
        "{names} {were} when the server started (a background job of a script, or nohup): \
         {stay} ignored; {} stops the server",
        working.join(" or ")
    );
}

/// Turns signals into shutdown requests on `handle`:
///
/// - SIGINT, SIGTERM or SIGHUP: a graceful shutdown; a second one of
///   these (any of the three) forces it.
/// - SIGQUIT: a forced shutdown at once (every connection closed, the
///   Unix socket files removed, exit 0).
/// - SIGUSR1, SIGUSR2: logged, and otherwise ignored (their default
///   action would end the process abruptly).
///
/// Those of SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 that the process
/// was started with ignored (`nohup`, a background job of a script) stay
/// ignored, as whoever started it asked; SIGTERM, a service manager's
/// stop, is always handled. SIGPIPE is ignored by the Rust runtime before
/// `main`, so a vanished peer or log reader is an error on that write,
/// never the end of the process. Every other signal keeps its default
/// action (SIGTSTP and SIGCONT: job control).
///
/// The handlers are in place when this returns (a signal from then on is
/// never the default, fatal one); the task that acts on them runs on the
/// current tokio runtime.
pub fn on_signals(handle: ShutdownHandle) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Bounded: a sender waits for room, and meanwhile the kernel and tokio
    // coalesce repeats of its signal, so a flood of signals costs nothing.
    let (tx, mut rx) = tokio::sync::mpsc::channel(HANDLED.len());
    let ignored: Vec<libc::c_int> = HANDLED
        .iter()
        .filter(|(signo, _, _, keep)| *keep && ignored_at_start(*signo))
        .map(|(signo, ..)| *signo)
        .collect();
    say_ignored(&ignored);
    for (signo, name, asks, _) in HANDLED {
        if ignored.contains(&signo) {
            continue;
        }
        let mut stream = signal(SignalKind::from_raw(signo))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() && tx.send((name, asks)).await.is_ok() {}
        });
    }
    tokio::spawn(async move {
        let mut stopping = false;
        while let Some((name, asks)) = rx.recv().await {
            debug!(name = "main", "{name} received");
            match asks {
                Asks::Nothing => info!(name = "main", "{name} ignored"),
                Asks::Stop if !stopping => {
                    stopping = true;
                    handle.shutdown();
                }
                Asks::Stop | Asks::Force => handle.force(),
            }
        }
    });
    Ok(())
}
