//! Reaching the server: the [`Connector`] the probe sets up, and the
//! [`Connection`] of each slot, whose [`drive`](Connection::drive) runs
//! its transport's exchange loop.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::exchange::{ExchangeEnd, ExchangePlan, Failure, SlotBuffers};
use super::http_connect::{self, HttpConnection, HttpConnector, HttpLink, HttpPlan, OwnH1};
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;
use super::source::{self, Source};
use super::tcp;
use super::ws_connect::{self, WsConnection, WsConnector};
use super::{h1, http, stream, udp, ws};
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;
use crate::transport::{BoxStream, ConnectError};

/// How the bench reaches the server. The address is resolved once, by the
/// probe, so that churn does not look the name up for every operation
/// (except over TLS, whose certificate check needs the name: there
/// [`transport::connect_with`](crate::transport::connect_with) resolves it for each connection).
#[derive(Debug, Clone)]
pub(crate) enum Connector {
    /// TCP to the address the probe reached, through the bench's own
    /// `Tcp` stream, from each of `sources` in turn (none: the system's
    /// choice), with a PROXY header first when asked.
    Tcp {
        peer: SocketAddr,
        sources: Arc<[IpAddr]>,
        proxy: Option<ProxySend>,
    },
    /// TLS or Unix, through [`connect_with`](crate::transport::connect_with) (and
    /// [`transport::connect_with`](crate::transport::connect_with) for a PROXY
    /// header).
    Stream {
        addr: Addr,
        tls: Option<Arc<rustls::ClientConfig>>,
        proxy: Option<ProxySend>,
    },
    /// UDP: a socket of its own for each slot, connected to the address
    /// that answered the probe, from each of `sources` in turn.
    Udp {
        peer: SocketAddr,
        sources: Arc<[IpAddr]>,
    },
    /// WebSocket (`ws://`, `wss://`): see [`ws_connect`].
    Ws(WsConnector),
    /// HTTP (`http://`, `https://`): see [`http_connect`].
    Http(HttpConnector),
}

/// One slot's connection to the server: a byte stream, a connected UDP
/// socket, a WebSocket connection, or an HTTP connection.
pub(crate) enum Connection {
    /// TCP, TLS or Unix.
    Stream(BoxStream),
    /// UDP: each message one datagram.
    Datagram(UdpSocket),
    /// `ws://` or `wss://`: each message one binary WebSocket message.
    WebSocket(Box<WsConnection>),
    /// `http://` or `https://` over HTTP/2 (and gRPC): each message one
    /// request, through hyper.
    Http(Box<HttpConnection>),
    /// `http://` or `https://` over HTTP/1.1: each message one request,
    /// through the bench's own client.
    Http1(Box<OwnH1>),
}

impl Connection {
    /// Exchanges messages until the run ends, the plan's limit is reached,
    /// or something goes wrong, with the exchange loop of the connection's
    /// transport. `pattern` is the connection's stream of bytes;
    /// `schedule`, when given, says when each message is due.
    pub(crate) async fn drive(
        &mut self,
        pattern: Pattern,
        plan: &ExchangePlan,
        bufs: &mut SlotBuffers,
        schedule: Option<&mut Schedule>,
        rec: &Recorder,
    ) -> Result<ExchangeEnd, Failure> {
        match self {
            Connection::Stream(stream) => {
                stream::drive(&mut **stream, pattern, plan, bufs, schedule, rec).await
            }
            Connection::Datagram(socket) => {
                udp::drive(socket, pattern, plan, bufs, schedule, rec).await
            }
            Connection::WebSocket(ws) => ws::drive(ws, pattern, plan, bufs, schedule, rec).await,
            Connection::Http(conn) => http::drive(conn, pattern, plan, bufs, schedule, rec).await,
            Connection::Http1(own) => {
                let OwnH1 { stream, target } = &mut **own;
                h1::drive(&mut **stream, target, pattern, plan, bufs, schedule, rec).await
            }
        }
    }
}

impl Connector {
    /// Connects once to find (and prove) a working address. The TCP
    /// connection it made is returned too, to be the run's first, so that
    /// a server that serves one connection at a time can be measured.
    /// Over UDP, proving means a datagram that comes back; over HTTP, a
    /// response (`http` says which requests the run will send).
    pub async fn probe(
        addr: &Addr,
        timeout: Duration,
        tls: Option<&Arc<rustls::ClientConfig>>,
        source: &Source,
        proxy: Option<&ProxySend>,
        http: HttpPlan,
    ) -> Result<(Connector, Option<std::net::TcpStream>), ConnectError> {
        match addr.transport() {
            Transport::Tcp => {
                let (stream, peer) = tcp::probe(addr, addr, timeout, proxy).await?;
                // Leaves this runtime's reactor, to join a worker's.
                let stream = stream.into_std().map_err(|error| ConnectError::Connect {
                    target: addr.to_string(),
                    error,
                })?;
                let sources = source.addrs_for(peer, Transport::Tcp).into();
                let proxy = proxy.cloned();
                Ok((
                    Connector::Tcp {
                        peer,
                        sources,
                        proxy,
                    },
                    Some(stream),
                ))
            }
            Transport::Udp => {
                let peer = udp::probe(addr, timeout).await?;
                let sources = source.addrs_for(peer, Transport::Udp).into();
                Ok((Connector::Udp { peer, sources }, None))
            }
            Transport::Tls | Transport::Unix => {
                crate::transport::connect_with(addr, timeout, tls, proxy).await?;
                let (tls, proxy) = (tls.cloned(), proxy.cloned());
                Ok((
                    Connector::Stream {
                        addr: addr.clone(),
                        tls,
                        proxy,
                    },
                    None,
                ))
            }
            Transport::Ws | Transport::Wss => Ok((
                Connector::Ws(ws_connect::probe(addr, timeout, tls, source, proxy).await?),
                None,
            )),
            Transport::Http | Transport::Https => Ok((
                Connector::Http(
                    http_connect::probe(addr, timeout, tls, source, proxy, http).await?,
                ),
                None,
            )),
        }
    }

    /// How many source addresses connections spread over (1: the
    /// system's choice).
    pub fn sources(&self) -> usize {
        match self {
            Connector::Tcp { sources, .. } | Connector::Udp { sources, .. } => sources.len().max(1),
            Connector::Stream { .. } => 1,
            Connector::Ws(ws) => ws.sources(),
            Connector::Http(http) => http.sources(),
        }
    }

    /// A new connection (over UDP, a new connected socket), within
    /// `timeout`; `seq` (any number that differs from one connection to
    /// the next) picks its source address.
    pub async fn connect(&self, timeout: Duration, seq: u64) -> Result<Connection, Failure> {
        let err = |detail: String| Failure::new(FailureKind::Connect, detail);
        match self {
            Connector::Tcp {
                peer,
                sources,
                proxy,
            } => {
                let from = source::pick(sources, seq);
                let stream = tcp::connect_slot(*peer, from, timeout, proxy.as_ref()).await?;
                Ok(Connection::Stream(Box::new(stream)))
            }
            Connector::Stream { addr, tls, proxy } => {
                crate::transport::connect_with(addr, timeout, tls.as_ref(), proxy.as_ref())
                    .await
                    .map(Connection::Stream)
                    .map_err(|e| err(e.to_string()))
            }
            Connector::Udp { peer, sources } => udp::socket(*peer, source::pick(sources, seq))
                .map(Connection::Datagram)
                .map_err(|e| err(format!("opening a UDP socket to {peer}: {e}"))),
            Connector::Ws(ws) => ws
                .connect(timeout, seq)
                .await
                .map(|ws| Connection::WebSocket(Box::new(ws))),
            Connector::Http(http) => http.connect(timeout, seq).await.map(|link| match link {
                HttpLink::Hyper(conn) => Connection::Http(Box::new(conn)),
                HttpLink::Own(own) => Connection::Http1(Box::new(own)),
            }),
        }
    }
}
