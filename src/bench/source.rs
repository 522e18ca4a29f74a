//! The local addresses the bench connects from (`--source`).
//!
//! A TCP connection is named by its four-tuple, and the side that closes
//! first keeps it in `TIME_WAIT` for a minute. From one source address to
//! one server port, that leaves the bench about 28,000 ephemeral ports a
//! minute to churn through, and over loopback it runs out of them long
//! before a fast server runs out of breath. Spreading connections over
//! many source addresses multiplies the tuples: every address of
//! 127.0.0.0/8 is the machine itself, so for a loopback target the bench
//! uses 127.0.0.2 to 127.0.0.254 by itself (`auto`).
//!
//! Only plain TCP connections spread by themselves. UDP does not, because
//! an echo server limits its replies per source address (`echo-server
//! --udp-rate`), and spreading would measure around that limit rather
//! than through it; an explicit `--source` applies to UDP too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::addr::Transport;

/// Where connections come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// 127.0.0.2 to 127.0.0.254 for a plain TCP connection to a loopback
    /// IPv4 address; the system's choice otherwise.
    #[default]
    Auto,
    /// Always the system's choice (`none`).
    System,
    /// These addresses, in turn (`IP`, or an IPv4 range `FIRST-LAST`).
    Addrs(Vec<IpAddr>),
}

/// The most addresses a `--source` range may hold.
pub const MAX_SOURCES: u32 = 1 << 16;

/// The addresses `auto` uses for a loopback target.
const LOOPBACK_FIRST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const LOOPBACK_LAST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 254);

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Source, String> {
        let s = s.trim();
        match s {
            "auto" => return Ok(Source::Auto),
            "none" => return Ok(Source::System),
            _ => {}
        }
        let bad = || {
            format!(
                "invalid source '{s}': expected auto, none, an IP address or an IPv4 range \
                 like 127.0.0.2-127.0.0.254"
            )
        };
        if let Some((first, last)) = s.split_once('-') {
            let first: Ipv4Addr = first.trim().parse().map_err(|_| bad())?;
            let last: Ipv4Addr = last.trim().parse().map_err(|_| bad())?;
            let (a, b) = (u32::from(first), u32::from(last));
            if a > b {
                return Err(format!(
                    "invalid source '{s}': the range ends before it starts"
                ));
            }
            if b - a >= MAX_SOURCES {
                return Err(format!(
                    "invalid source '{s}': at most {MAX_SOURCES} addresses"
                ));
            }
            return Ok(Source::Addrs(
                (a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect(),
            ));
        }
        let ip: IpAddr = s.parse().map_err(|_| bad())?;
        Ok(Source::Addrs(vec![ip]))
    }
}

impl Source {
    /// The addresses to connect to `peer` over `transport` from, in turn;
    /// empty for the system's choice. `auto` checks that the machine lets
    /// it bind the first of them.
    pub fn addrs_for(&self, peer: SocketAddr, transport: Transport) -> Vec<IpAddr> {
        match self {
            Source::System => Vec::new(),
            Source::Addrs(addrs) => addrs.clone(),
            Source::Auto => {
                let loopback_v4 = matches!(peer.ip(), IpAddr::V4(ip) if ip.is_loopback());
                if transport != Transport::Tcp || !loopback_v4 || !can_bind(LOOPBACK_FIRST) {
                    return Vec::new();
                }
                let (a, b) = (u32::from(LOOPBACK_FIRST), u32::from(LOOPBACK_LAST));
                (a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect()
            }
        }
    }
}

/// Connection `seq`'s source among `sources`, in turn; `None` (the
/// system's choice) when there are none.
pub(crate) fn pick(sources: &[IpAddr], seq: u64) -> Option<IpAddr> {
    (!sources.is_empty()).then(|| sources[(seq % sources.len() as u64) as usize])
}

fn can_bind(ip: Ipv4Addr) -> bool {
    std::net::TcpListener::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auto_none_one_and_ranges() {
        assert_eq!("auto".parse(), Ok(Source::Auto));
        assert_eq!("none".parse(), Ok(Source::System));
        let one: Source = "::1".parse().unwrap();
        assert_eq!(one, Source::Addrs(vec!["::1".parse().unwrap()]));
        let Ok(Source::Addrs(range)) = "127.0.0.2-127.0.0.254".parse::<Source>() else {
            panic!("a range");
        };
        assert_eq!(range.len(), 253);
        assert_eq!(range[0], "127.0.0.2".parse::<IpAddr>().unwrap());
        for bad in [
            "",
            "x",
            "127.0.0.9-127.0.0.2",
            "1.2.3.4-",
            "0.0.0.0-255.255.255.255",
        ] {
            assert!(bad.parse::<Source>().is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_spreads_plain_tcp_to_loopback_only() {
        let local: SocketAddr = "127.0.0.1:7".parse().unwrap();
        assert_eq!(Source::Auto.addrs_for(local, Transport::Tcp).len(), 253);
        assert!(Source::Auto.addrs_for(local, Transport::Udp).is_empty());
        let v6: SocketAddr = "[::1]:7".parse().unwrap();
        assert!(Source::Auto.addrs_for(v6, Transport::Tcp).is_empty());
        assert!(Source::System.addrs_for(local, Transport::Tcp).is_empty());
    }
}
