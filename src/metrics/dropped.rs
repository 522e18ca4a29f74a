//! Why the metrics endpoint dropped a connection: a counter's label.

/// Why a connection to the metrics endpoint was closed unanswered: the
/// `reason` label of `echoes_metrics_connections_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// It had sent no whole request when a newcomer needed its slot.
    Evicted,
    /// It sent no whole request within [`HEAD_DEADLINE`](super::http::HEAD_DEADLINE).
    Timeout,
}

impl Dropped {
    /// Every reason, in the order the exposition lists them.
    pub const ALL: [Dropped; 2] = [Dropped::Evicted, Dropped::Timeout];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Evicted => "evicted",
            Dropped::Timeout => "timeout",
        }
    }
}
