//! Whether the server says it is serving: one switch, which gRPC health
//! (`grpc.health.v1.Health`) reports and the HTTP listeners read and flip
//! at `/.well-known/echoes/health` (see `http::health`), so that a
//! load-balancer test can drain a backend without stopping it.

use tokio::sync::watch;

/// The server's serving switch, shared by its HTTP listeners; on at
/// start.
#[derive(Debug)]
pub struct Serving {
    on: watch::Sender<bool>,
}

impl Default for Serving {
    fn default() -> Serving {
        Serving {
            on: watch::Sender::new(true),
        }
    }
}

impl Serving {
    /// Whether the server says it is serving now.
    pub fn is_serving(&self) -> bool {
        *self.on.borrow()
    }

    /// Says the server is serving, or not.
    pub fn set(&self, serving: bool) {
        self.on.send_replace(serving);
    }

    /// A receiver that sees every change from now on (gRPC health's Watch).
    #[cfg(any(feature = "grpc", test))]
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.on.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::Serving;

    #[test]
    fn a_flip_is_seen_by_watchers() {
        let s = Serving::default();
        let mut rx = s.subscribe();
        assert!(s.is_serving());
        s.set(false);
        assert!(rx.has_changed().unwrap());
        assert!(!*rx.borrow_and_update());
        assert!(!s.is_serving());
    }
}
