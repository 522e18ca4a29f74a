//! A `--listen` address with the options of its own: the listener, as
//! the server is told to open it.
//!
//! The PROXY protocol mode is carried here, by the listener, not looked
//! up by address: two listeners spelled alike (`-l 127.0.0.1:0 -l
//! '127.0.0.1:0?proxy=required'`) keep a mode each.

use std::fmt;
use std::str::FromStr;

use crate::addr::{Addr, AddrError, Transport};
use crate::proxy::ProxyMode;

/// A `--listen` address and the options its query sets: for now one,
/// `?proxy=off|optional|required`, the listener's PROXY protocol mode
/// (`tcp://0.0.0.0:7?proxy=optional`). Only `?proxy=` at the very end is
/// an option, so a Unix path may hold any other `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// The address.
    pub addr: Addr,
    /// Its own PROXY protocol mode, when it has one.
    pub proxy: Option<ProxyMode>,
}

impl FromStr for ListenAddr {
    type Err = AddrError;

    fn from_str(input: &str) -> Result<ListenAddr, AddrError> {
        let Some((base, mode)) = input.rsplit_once("?proxy=") else {
            return Ok(ListenAddr {
                addr: input.parse()?,
                proxy: None,
            });
        };
        let err = |reason| AddrError {
            input: input.to_string(),
            reason,
        };
        let addr: Addr = base.parse()?;
        let mode = mode
            .parse()
            .map_err(|_| err("?proxy= takes off, optional or required"))?;
        if addr.transport() == Transport::Udp {
            return Err(err("the PROXY protocol is not used over udp://"));
        }
        Ok(ListenAddr {
            addr,
            proxy: Some(mode),
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proxy {
            Some(mode) => write!(f, "{}?proxy={mode}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl From<Addr> for ListenAddr {
    /// A listener with no options of its own.
    fn from(addr: Addr) -> ListenAddr {
        ListenAddr { addr, proxy: None }
    }
}

impl ListenAddr {
    /// This listener's PROXY protocol mode: its own, else `default`
    /// (`--proxy-protocol`'s); always off over UDP.
    pub fn proxy_mode(&self, default: ProxyMode) -> ProxyMode {
        if self.addr.transport() == Transport::Udp {
            return ProxyMode::Off;
        }
        self.proxy.unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_a_proxy_mode() {
        let l: ListenAddr = "tcp://0.0.0.0:7?proxy=optional".parse().unwrap();
        assert_eq!(l.addr, "0.0.0.0:7".parse().unwrap());
        assert_eq!(l.proxy, Some(ProxyMode::Optional));
        assert_eq!(l.to_string(), "0.0.0.0:7?proxy=optional");
        let l: ListenAddr = "unix:/run/a?b?proxy=required".parse().unwrap();
        assert_eq!(l.addr, Addr::Unix("/run/a?b".into()));
        assert_eq!(l.proxy, Some(ProxyMode::Required));
        let l: ListenAddr = "[::1]:1".parse().unwrap();
        assert_eq!(l.proxy, None);
        for bad in [
            "udp://[::1]:7?proxy=required",
            "tcp://a:1?proxy=sometimes",
            "tcp://a:1?proxy=",
            "tcp://a:1?proxi=optional",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
        let e = "udp://h:7?proxy=optional"
            .parse::<ListenAddr>()
            .unwrap_err();
        assert!(e.to_string().contains("not used over udp://"), "{e}");
        // A plain address keeps refusing a query.
        assert!("tcp://a:1?proxy=optional".parse::<Addr>().is_err());
    }

    #[test]
    fn a_listeners_own_mode_overrides_the_default() {
        let udp: ListenAddr = "udp://127.0.0.1:7".parse().unwrap();
        let own: ListenAddr = "127.0.0.1:7?proxy=optional".parse().unwrap();
        let plain: ListenAddr = "127.0.0.1:7".parse().unwrap();
        assert_eq!(own.proxy_mode(ProxyMode::Required), ProxyMode::Optional);
        assert_eq!(plain.proxy_mode(ProxyMode::Required), ProxyMode::Required);
        assert_eq!(plain.proxy_mode(ProxyMode::Off), ProxyMode::Off);
        assert_eq!(udp.proxy_mode(ProxyMode::Required), ProxyMode::Off);
    }
}
