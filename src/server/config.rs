//! What a server is told ([`ServerConfig`]) and the checks made before
//! anything is bound ([`ServerConfig::validate`]). The TLS set-up is in
//! `tls_setup`.

use std::time::Duration;

use super::error::ServerConfigError;
use super::listen::ListenAddr;
use crate::activation::InheritedSocket;
use crate::addr::{Addr, Transport};
#[cfg(feature = "http")]
use crate::http::HttpConfig;
use crate::proxy::ProxySettings;
use crate::shutdown::ShutdownHandle;
#[cfg(feature = "tls")]
use crate::transport::tls::{self, TlsServerSettings};
use crate::transport::udp_guard;

/// How long a TLS peer has to complete its handshake, by default.
#[cfg(feature = "tls")]
const HANDSHAKE_TIMEOUT: Duration = tls::HANDSHAKE_TIMEOUT;

/// The default largest single read: one 256 KiB buffer per shard thread.
/// Reads are at most 64 KiB (the C epoll peer's) until a connection
/// streams, and then up to this, so big transfers take few system calls
/// (see the `echo` module, and docs/design.md, "One stream on one core").
pub const DEFAULT_READ_SIZE: usize = 256 * 1024;

/// The largest read size: one `read(2)` from a socket returns at most
/// what its receive buffer holds, which Linux caps at `tcp_rmem`'s maximum
/// (6 MiB by default, of which about half is payload); a UDP datagram is
/// at most 64 KiB. A larger buffer is never filled, only paid for, per
/// shard and per blocked connection.
pub const MAX_READ_SIZE: usize = 4 << 20;

/// The largest connection limit ([`ServerConfig::max_connections`] and
/// [`ServerConfig::max_connections_per_ip`]): far beyond what any system
/// can hold open, and well within what a semaphore can count.
pub const MAX_CONNECTION_LIMIT: usize = u32::MAX as usize;

pub use crate::runtime::MAX_THREADS;

/// The default time open connections get to finish after a shutdown request.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a server needs to know: build one with
/// [`ServerConfig::new`], change what you care about with its setters
/// (each says its default), and give it to [`Server::bind`](super::Server::bind),
/// which checks it first ([`ServerConfig::validate`]).
///
/// ```
/// use std::time::Duration;
/// use echoes::ServerConfig;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = ServerConfig::new("127.0.0.1:0".parse()?);
/// config
///     .read_size(16 * 1024)
///     .idle_timeout(Duration::from_secs(60))
///     .max_connections(1000);
/// config.validate()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    pub(super) listen: Vec<ListenAddr>,
    pub(super) inherited: Vec<InheritedSocket>,
    pub(super) read_size: usize,
    pub(super) max_connections: Option<usize>,
    pub(super) max_connections_per_ip: Option<usize>,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) zero_copy: bool,
    pub(super) shutdown_timeout: Duration,
    pub(super) shutdown: ShutdownHandle,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<TlsServerSettings>,
    #[cfg(feature = "tls")]
    pub(super) tls_handshake_timeout: Duration,
    pub(super) udp_rate: u32,
    pub(super) metrics: Option<Addr>,
    #[cfg(feature = "http")]
    pub(super) http: HttpConfig,
    pub(super) proxy: ProxySettings,
    pub(super) threads: usize,
}

impl Default for ServerConfig {
    /// A configuration with every default and no address yet: give it
    /// some with [`listen`](ServerConfig::listen), or sockets passed by
    /// systemd with [`inherited`](ServerConfig::inherited).
    fn default() -> ServerConfig {
        ServerConfig {
            listen: Vec::new(),
            inherited: Vec::new(),
            read_size: DEFAULT_READ_SIZE,
            max_connections: None,
            max_connections_per_ip: None,
            idle_timeout: None,
            zero_copy: false,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            shutdown: ShutdownHandle::new(),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            tls_handshake_timeout: HANDSHAKE_TIMEOUT,
            udp_rate: udp_guard::DEFAULT_RATE,
            metrics: None,
            #[cfg(feature = "http")]
            http: HttpConfig::default(),
            proxy: ProxySettings::default(),
            threads: 1,
        }
    }
}

impl ServerConfig {
    /// A configuration listening on `addr`, every other setting at its
    /// default.
    pub fn new(addr: Addr) -> ServerConfig {
        ServerConfig {
            listen: vec![addr.into()],
            ..ServerConfig::default()
        }
    }

    /// The addresses to listen on, replacing those given so far: each an
    /// [`Addr`], or a [`ListenAddr`] with a PROXY protocol mode of its own.
    /// A host name binds every address it resolves to, a web address takes
    /// no path, and no port (other than 0) or Unix path may be given twice.
    ///
    /// Default is the one address given to [`new`](Self::new), or none
    /// for [`default`](Self::default).
    pub fn listen<A: Into<ListenAddr>>(&mut self, addrs: impl IntoIterator<Item = A>) -> &mut Self {
        self.listen = addrs.into_iter().map(Into::into).collect();
        self
    }

    /// Sockets passed by the service manager (from
    /// [`activation::take`](crate::activation::take)), served instead of
    /// the [`listen`](Self::listen) addresses when there are any. A TCP
    /// socket named `tls` is served with TLS.
    ///
    /// Default is none.
    pub fn inherited(&mut self, sockets: Vec<InheritedSocket>) -> &mut Self {
        self.inherited = sockets;
        self
    }

    /// The largest single read, in bytes: 1 to [`MAX_READ_SIZE`].
    ///
    /// Default is [`DEFAULT_READ_SIZE`] (256 KiB).
    pub fn read_size(&mut self, bytes: usize) -> &mut Self {
        self.read_size = bytes;
        self
    }

    /// At most this many connections are served at once; the rest wait in
    /// the kernel's backlog, not accepted. At most
    /// [`MAX_CONNECTION_LIMIT`]; `None` for no limit.
    ///
    /// Default is `None`.
    pub fn max_connections(&mut self, limit: impl Into<Option<usize>>) -> &mut Self {
        self.max_connections = limit.into();
        self
    }

    /// At most this many connections from one client IP address; more are
    /// closed at once. At most [`MAX_CONNECTION_LIMIT`]; `None` for no
    /// limit.
    ///
    /// Default is `None`.
    pub fn max_connections_per_ip(&mut self, limit: impl Into<Option<usize>>) -> &mut Self {
        self.max_connections_per_ip = limit.into();
        self
    }

    /// Close connections with no traffic for this long; `None` for never.
    ///
    /// Default is `None`.
    pub fn idle_timeout(&mut self, timeout: impl Into<Option<Duration>>) -> &mut Self {
        self.idle_timeout = timeout.into();
        self
    }

    /// Echo bulk transfers with `splice(2)` instead of copying them: less
    /// server CPU per megabyte, but over loopback the client then pays
    /// more.
    ///
    /// Default is `false`.
    pub fn zero_copy(&mut self, on: bool) -> &mut Self {
        self.zero_copy = on;
        self
    }

    /// How long open connections may finish after shutdown begins, before
    /// they are closed.
    ///
    /// Default is [`DEFAULT_SHUTDOWN_TIMEOUT`] (10 s).
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The handle that stops the server: one already wired to signals
    /// ([`shutdown::on_signals`](crate::shutdown::on_signals)), say.
    /// [`Server::shutdown_handle`](super::Server::shutdown_handle) returns
    /// a clone of it.
    ///
    /// Default is a new handle.
    pub fn shutdown_handle(&mut self, handle: ShutdownHandle) -> &mut Self {
        self.shutdown = handle;
        self
    }

    /// The certificate for `tls://` and `https://` listeners: required
    /// when there is one, and refused when there is none.
    ///
    /// Default is `None`.
    #[cfg(feature = "tls")]
    pub fn tls(&mut self, settings: impl Into<Option<TlsServerSettings>>) -> &mut Self {
        self.tls = settings.into();
        self
    }

    /// How long a TLS peer has to complete its handshake.
    ///
    /// Default is [`tls::HANDSHAKE_TIMEOUT`] (10 s).
    #[cfg(feature = "tls")]
    pub fn tls_handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.tls_handshake_timeout = timeout;
        self
    }

    /// UDP replies per second to one source address, the reflection
    /// guard's rate; 0 for no limit.
    ///
    /// Default is [`DEFAULT_UDP_RATE`](crate::transport::DEFAULT_UDP_RATE)
    /// (1000).
    pub fn udp_rate(&mut self, per_second: u32) -> &mut Self {
        self.udp_rate = per_second;
        self
    }

    /// Where to serve Prometheus metrics: a plain `HOST:PORT`, answered
    /// over HTTP at `/metrics`.
    ///
    /// Default is `None`: no metrics page.
    pub fn metrics(&mut self, addr: impl Into<Option<Addr>>) -> &mut Self {
        self.metrics = addr.into();
        self
    }

    /// The settings of `http://` and `https://` listeners.
    ///
    /// Default is [`HttpConfig::default`].
    #[cfg(feature = "http")]
    pub fn http(&mut self, http: HttpConfig) -> &mut Self {
        self.http = http;
        self
    }

    /// Which stream listeners expect a PROXY protocol header, and how long
    /// they wait for it.
    ///
    /// Default is [`ProxySettings::default`]: none does.
    pub fn proxy(&mut self, proxy: ProxySettings) -> &mut Self {
        self.proxy = proxy;
        self
    }

    /// Shards, 1 to [`MAX_THREADS`]: with 1, everything runs on the runtime
    /// that calls [`Server::run`](super::Server::run); with N > 1, N
    /// threads, each a single-threaded runtime with its own socket per
    /// address (see [`crate::server`]). `echo-server` asks for one per
    /// core.
    ///
    /// Default is 1.
    pub fn threads(&mut self, shards: usize) -> &mut Self {
        self.threads = shards;
        self
    }

    /// Checks what can be checked without a socket: each value in range,
    /// and the settings fitting together. [`Server::bind`](super::Server::bind)
    /// calls it first; a program calls it itself to report a bad setting
    /// before it starts anything.
    pub fn validate(&self) -> Result<(), ServerConfigError> {
        use ServerConfigError as E;
        check_read_size(self.read_size)?;
        let limits = [self.max_connections, self.max_connections_per_ip];
        if limits.iter().flatten().any(|&n| n > MAX_CONNECTION_LIMIT) {
            return Err(E::LimitTooLarge {
                max: MAX_CONNECTION_LIMIT,
            });
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(E::Threads { max: MAX_THREADS });
        }
        if self.listen.is_empty() && self.inherited.is_empty() {
            return Err(E::NoAddress);
        }
        if let Some((first, second)) = same_place(&self.listen) {
            return Err(E::DuplicateListener { first, second });
        }
        if let Some((scheme, feature)) = self.not_built() {
            return Err(E::NotBuilt { scheme, feature });
        }
        #[cfg(feature = "tls")]
        match (&self.tls, self.wants_tls()) {
            (None, Some(scheme)) => return Err(E::TlsWithoutCertificate { scheme }),
            // Sockets passed by systemd decide for themselves.
            (Some(_), None) if self.inherited.is_empty() => return Err(E::CertificateWithoutTls),
            _ => {}
        }
        if let Some(a) = self
            .listen
            .iter()
            .map(|l| &l.addr)
            .find(|a| a.web_path().is_some_and(|p| p != "/"))
        {
            return Err(E::PathOnListener { addr: a.clone() });
        }
        #[cfg(feature = "http")]
        if self.http.ws_max_frame > self.http.ws_max_message {
            return Err(E::FrameOverMessage {
                frame: self.http.ws_max_frame,
                message: self.http.ws_max_message,
            });
        }
        #[cfg(feature = "http")]
        if let Err(why) = self.http.parsed_default_knobs() {
            return Err(E::DefaultKnobs { why });
        }
        if let Some(addr) = &self.metrics
            && addr.transport() != Transport::Tcp
        {
            return Err(E::MetricsNotTcp { addr: addr.clone() });
        }
        Ok(())
    }

    /// The first listener (or inherited socket) whose protocol this build
    /// leaves out, and the feature that brings it.
    fn not_built(&self) -> Option<(Transport, &'static str)> {
        let schemes = self.listen.iter().map(|l| l.addr.transport().listener());
        let inherited = self.wants_tls().filter(|_| !self.inherited.is_empty());
        schemes
            .chain(inherited)
            .find_map(|t| Some((t, crate::transport::not_built(t)?)))
    }

    /// The scheme of the first listener that needs a certificate, if any:
    /// of the inherited sockets when there are some, else of the addresses.
    pub(super) fn wants_tls(&self) -> Option<Transport> {
        if self.inherited.is_empty() {
            self.listen
                .iter()
                .map(|l| l.addr.transport().listener())
                .find(|t| matches!(t, Transport::Tls | Transport::Https))
        } else {
            self.inherited
                .iter()
                .any(InheritedSocket::wants_tls)
                .then_some(Transport::Tls)
        }
    }
}

/// The one check of a read size, for [`ServerConfig::validate`] and for
/// `--read-size` as it is parsed: 1 byte to [`MAX_READ_SIZE`]. Absurd
/// values are refused, not allocated per shard.
pub fn check_read_size(n: usize) -> Result<(), ServerConfigError> {
    match n {
        0 => Err(ServerConfigError::ZeroReadSize),
        n if n > MAX_READ_SIZE => Err(ServerConfigError::ReadSizeTooLarge { max: MAX_READ_SIZE }),
        _ => Ok(()),
    }
}

/// The first two listeners that would bind the same place: one stream
/// port (TCP, TLS, HTTP and HTTPS share them) or one UDP port on the same
/// host as written, or one Unix path. Port 0 is a new port each time.
fn same_place(listen: &[ListenAddr]) -> Option<(Addr, Addr)> {
    let place = |a: &Addr| match a {
        Addr::Unix(path) => Some((false, path.display().to_string(), 0)),
        _ => {
            let (host, port) = a.host_port()?;
            let udp = a.transport() == Transport::Udp;
            (port != 0).then(|| (udp, host.to_string(), port))
        }
    };
    listen.iter().enumerate().find_map(|(i, b)| {
        let at = place(&b.addr)?;
        let a = listen[..i]
            .iter()
            .find(|a| place(&a.addr) == Some(at.clone()))?;
        Some((a.addr.clone(), b.addr.clone()))
    })
}

/// Without the protocols' features, their addresses are refused before
/// anything is bound, naming the feature.
#[cfg(all(test, not(feature = "tls")))]
#[test]
fn a_protocol_left_out_is_refused_naming_its_feature() {
    for (addr, scheme, feature) in [
        ("tls://127.0.0.1:0", Transport::Tls, "tls"),
        ("http://127.0.0.1:0", Transport::Http, "http"),
        ("wss://127.0.0.1:0", Transport::Https, "http"),
    ] {
        let config = ServerConfig::new(addr.parse().unwrap());
        let e = config.validate().unwrap_err();
        assert_eq!(e, ServerConfigError::NotBuilt { scheme, feature });
        assert!(
            e.to_string().contains(&format!("`{feature}` feature")),
            "{e}"
        );
    }
    assert_eq!(
        ServerConfig::new("127.0.0.1:0".parse().unwrap()).validate(),
        Ok(())
    );
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;
    use crate::activation::{InheritedSocket, SocketKind};
    use crate::server::ServerError;
    use crate::transport::tls::CertSource;

    fn config(addrs: &[&str]) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.listen(addrs.iter().map(|a| a.parse::<Addr>().unwrap()));
        config
    }

    fn self_signed() -> TlsServerSettings {
        TlsServerSettings {
            cert: CertSource::SelfSigned,
            client_ca: None,
        }
    }

    /// A listening TCP socket as systemd would pass it, named `name`.
    fn inherited(name: Option<&str>) -> InheritedSocket {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        InheritedSocket {
            fd: listener.into(),
            kind: SocketKind::Tcp(local),
            name: name.map(String::from),
        }
    }

    #[test]
    fn every_default_is_accepted() {
        assert_eq!(
            ServerConfig::new("127.0.0.1:0".parse().unwrap()).validate(),
            Ok(())
        );
        let mut all = config(&["tls://127.0.0.1:0", "udp://[::1]:0", "http://127.0.0.1:0/"]);
        all.tls(self_signed())
            .metrics("127.0.0.1:0".parse::<Addr>().unwrap());
        assert_eq!(all.validate(), Ok(()));
    }

    #[test]
    fn values_out_of_range_are_refused() {
        use ServerConfigError as E;
        let refused = |set: &dyn Fn(&mut ServerConfig)| {
            let mut c = config(&["127.0.0.1:0"]);
            set(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(refused(&|c| _ = c.read_size(0)), E::ZeroReadSize);
        assert_eq!(
            refused(&|c| _ = c.read_size(MAX_READ_SIZE + 1)),
            E::ReadSizeTooLarge { max: MAX_READ_SIZE }
        );
        let too_many = E::LimitTooLarge {
            max: MAX_CONNECTION_LIMIT,
        };
        assert_eq!(
            refused(&|c| _ = c.max_connections(MAX_CONNECTION_LIMIT + 1)),
            too_many
        );
        assert_eq!(
            refused(&|c| _ = c.max_connections_per_ip(usize::MAX)),
            too_many
        );
        for threads in [0, MAX_THREADS + 1] {
            assert_eq!(
                refused(&|c| _ = c.threads(threads)),
                E::Threads { max: MAX_THREADS }
            );
        }
        // The largest values are not refused.
        let mut c = config(&["127.0.0.1:0"]);
        c.read_size(MAX_READ_SIZE)
            .max_connections(MAX_CONNECTION_LIMIT)
            .threads(MAX_THREADS);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn settings_that_do_not_fit_together_are_refused() {
        use ServerConfigError as E;
        assert_eq!(config(&[]).validate(), Err(E::NoAddress));
        assert_eq!(
            config(&["127.0.0.1:0", "tls://127.0.0.1:0"]).validate(),
            Err(E::TlsWithoutCertificate {
                scheme: Transport::Tls
            })
        );
        assert_eq!(
            config(&["https://127.0.0.1:0"]).validate(),
            Err(E::TlsWithoutCertificate {
                scheme: Transport::Https
            })
        );
        let mut plain = config(&["127.0.0.1:0", "http://127.0.0.1:0"]);
        plain.tls(self_signed());
        assert_eq!(plain.validate(), Err(E::CertificateWithoutTls));
        let path: Addr = "http://127.0.0.1:0/chat".parse().unwrap();
        assert_eq!(
            config(&["127.0.0.1:0", "http://127.0.0.1:0/chat"]).validate(),
            Err(E::PathOnListener { addr: path })
        );
        let mut frames = config(&["http://127.0.0.1:0"]);
        frames.http(HttpConfig {
            ws_max_frame: 2 << 20,
            ws_max_message: 1 << 20,
            ..HttpConfig::default()
        });
        assert_eq!(
            frames.validate(),
            Err(E::FrameOverMessage {
                frame: 2 << 20,
                message: 1 << 20
            })
        );
        let udp: Addr = "udp://127.0.0.1:9107".parse().unwrap();
        let mut metrics = config(&["127.0.0.1:0"]);
        metrics.metrics(udp.clone());
        assert_eq!(metrics.validate(), Err(E::MetricsNotTcp { addr: udp }));
    }

    /// Sockets passed by systemd decide which need a certificate, not the
    /// addresses they replace.
    #[test]
    fn inherited_sockets_decide_what_needs_a_certificate() {
        let mut named_tls = config(&[]);
        named_tls.inherited(vec![inherited(Some("tls"))]);
        assert_eq!(
            named_tls.validate(),
            Err(ServerConfigError::TlsWithoutCertificate {
                scheme: Transport::Tls
            })
        );
        let mut plain = config(&["tls://127.0.0.1:0"]);
        plain.inherited(vec![inherited(None)]).tls(self_signed());
        assert_eq!(plain.validate(), Ok(()));
        plain.tls(None);
        assert_eq!(plain.validate(), Ok(()));
    }

    /// `bind` refuses a bad configuration before it binds anything.
    #[tokio::test]
    async fn bind_refuses_with_the_variant() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // The port is taken: had it tried to bind, the error would be Bind.
        let addr = format!("tls://127.0.0.1:{port}").parse().unwrap();
        match super::super::Server::bind(ServerConfig::new(addr)).await {
            Err(ServerError::Config(ServerConfigError::TlsWithoutCertificate { scheme })) => {
                assert_eq!(scheme, Transport::Tls)
            }
            Err(e) => panic!("refused with {e}"),
            Ok(_) => panic!("bound"),
        }
    }
}
