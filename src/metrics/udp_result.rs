//! The `result` label of `echoes_udp_datagrams_total`: what became of a
//! UDP datagram. The guard (`transport::udp_guard`) decides it; it lives
//! here, with the counters, so that metrics need nothing above them.

/// What became of a UDP datagram: the guard's verdict, and the `result`
/// label of `echoes_udp_datagrams_total` ([`Metrics::udp`](super::Metrics::udp)); `transport::udp_guard` gives the verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpResult {
    /// Echoed to its sender.
    Answered,
    /// Not answered: the source port is privileged (below 1024) or NFS's.
    RefusedPort,
    /// Not answered: the source is a broadcast or multicast address.
    RefusedBroadcast,
    /// Not answered: the source is over `--udp-rate`.
    RefusedRate,
    /// Not answered: the source is one of the server's own UDP addresses,
    /// so the answer would loop back to it (a forged source).
    RefusedSelf,
}

impl UdpResult {
    pub(crate) const ALL: [UdpResult; 5] = [
        UdpResult::Answered,
        UdpResult::RefusedPort,
        UdpResult::RefusedBroadcast,
        UdpResult::RefusedRate,
        UdpResult::RefusedSelf,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UdpResult::Answered => "answered",
            UdpResult::RefusedPort => "refused_port",
            UdpResult::RefusedBroadcast => "refused_broadcast",
            UdpResult::RefusedRate => "refused_rate",
            UdpResult::RefusedSelf => "refused_self",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
