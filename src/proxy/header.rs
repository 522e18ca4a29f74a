//! What a PROXY protocol header says, owned and independent of the wire
//! format: who the real client is, where it connected to, and the v2 TLVs
//! (ALPN, authority, the checked CRC32c, SSL, AWS's VPC endpoint ID, …).
//! The server keeps only the client's address for the log; the type is
//! public so that other front ends (an HTTP reflection, say) can show it all.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which version of the PROXY protocol a header uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Version {
    /// The text line, `PROXY TCP4 … \r\n`.
    V1,
    /// The binary header, with TLVs.
    V2,
}

impl Version {
    /// `v1` or `v2`, as flags and metric labels write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the sender says the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Relayed on behalf of a client (v1, and v2's PROXY command).
    Proxy,
    /// The proxy's own connection, a health check say (v2's LOCAL): the
    /// socket's endpoints are the real ones.
    Local,
}

/// The transport protocol of the relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP, or a Unix stream socket.
    Stream,
    /// UDP, or a Unix datagram socket.
    Datagram,
}

/// The relayed connection's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addresses {
    /// None given: v1's `UNKNOWN`, v2's `AF_UNSPEC` or a LOCAL command.
    /// The socket's own peer stands.
    Unknown,
    /// IPv4 or IPv6 endpoints.
    Inet {
        /// TCP or UDP.
        protocol: Protocol,
        /// The real client.
        source: SocketAddr,
        /// Where the client connected to (the proxy's listener).
        destination: SocketAddr,
    },
    /// Unix socket paths (v2 only), up to their first NUL byte.
    Unix {
        /// Stream or datagram socket.
        protocol: Protocol,
        /// The client's socket path (often empty: unnamed).
        source: PathBuf,
        /// The socket path the client connected to.
        destination: PathBuf,
    },
}

/// The SSL TLV (`PP2_TYPE_SSL`): how the client reached the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ssl {
    /// The client connected over TLS (`PP2_CLIENT_SSL`).
    pub client_ssl: bool,
    /// The client presented a certificate on this connection.
    pub client_cert_conn: bool,
    /// The client presented a certificate in this TLS session.
    pub client_cert_sess: bool,
    /// 0 when the client's certificate was presented and verified.
    pub verify: u32,
    /// The TLS version, e.g. `TLSv1.3`.
    pub version: Option<String>,
    /// The client certificate's Common Name.
    pub cn: Option<String>,
    /// The cipher, e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: Option<String>,
    /// The signature algorithm of the proxy's certificate.
    pub sig_alg: Option<String>,
    /// The key algorithm of the proxy's certificate, e.g. `RSA2048`.
    pub key_alg: Option<String>,
}

/// The v2 TLVs this crate knows, and the others as they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tlvs {
    /// `PP2_TYPE_ALPN`: the protocol the client negotiated, e.g. `h2`.
    pub alpn: Option<Vec<u8>>,
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI).
    pub authority: Option<String>,
    /// `PP2_TYPE_CRC32C`: the header's checksum, present only once checked.
    pub crc32c: Option<u32>,
    /// `PP2_TYPE_UNIQUE_ID`: the proxy's ID of the connection.
    pub unique_id: Option<Vec<u8>>,
    /// `PP2_TYPE_SSL` and its sub-TLVs.
    pub ssl: Option<Ssl>,
    /// `PP2_TYPE_NETNS`: the network namespace's name.
    pub netns: Option<String>,
    /// AWS's `PP2_TYPE_AWS` (0xEA) with subtype `PP2_SUBTYPE_AWS_VPCE_ID`
    /// (0x01): the VPC endpoint the client came through (an NLB behind
    /// PrivateLink).
    pub aws_vpce_id: Option<String>,
    /// Every other TLV (NOOPs aside): type and value.
    pub other: Vec<(u8, Vec<u8>)>,
}

impl Tlvs {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        *self == Tlvs::default()
    }
}

/// One parsed PROXY protocol header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    /// v1 or v2.
    pub version: Version,
    /// PROXY or LOCAL.
    pub command: Command,
    /// The relayed connection's endpoints.
    pub addresses: Addresses,
    /// The v2 TLVs (none for v1, and none kept for LOCAL).
    pub tlvs: Tlvs,
    /// The header's length on the wire; the peer's data starts after it.
    pub len: usize,
}

impl ProxyHeader {
    /// The real client, when the header names one: a PROXY command with
    /// IP endpoints. `None` (v1 `UNKNOWN`, v2 LOCAL, `AF_UNSPEC`, Unix
    /// paths) means the socket's own peer stands.
    pub fn client(&self) -> Option<SocketAddr> {
        match (&self.command, &self.addresses) {
            (Command::Proxy, Addresses::Inet { source, .. }) => Some(*source),
            _ => None,
        }
    }

    /// Where the client connected to, when the header names it.
    pub fn destination(&self) -> Option<SocketAddr> {
        match (&self.command, &self.addresses) {
            (Command::Proxy, Addresses::Inet { destination, .. }) => Some(*destination),
            _ => None,
        }
    }

    /// A short description for the log: `PROXY v2`, `PROXY v1 UNKNOWN`,
    /// `PROXY v2 LOCAL`, `PROXY v2 UNIX`.
    pub fn kind(&self) -> String {
        let what = match (&self.command, &self.addresses, self.version) {
            (Command::Local, ..) => " LOCAL",
            (_, Addresses::Unknown, Version::V1) => " UNKNOWN",
            (_, Addresses::Unknown, Version::V2) => " UNSPEC",
            (_, Addresses::Unix { .. }, _) => " UNIX",
            (_, Addresses::Inet { .. }, _) => "",
        };
        format!("PROXY {}{what}", self.version)
    }
}

/// Whether `bytes` are printable ASCII (space included) and nothing else.
pub fn printable(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| (0x20..0x7f).contains(&b))
}

/// A TLV's value as a log line may show it: as it is when it is printable
/// ASCII without a backslash, else as Python's `repr` of its bytes
/// (`b'evil\nmain: closing server'`), as the log lines show data, so a
/// value holding a newline or an escape sequence cannot forge a line.
fn shown(bytes: &[u8]) -> String {
    if printable(bytes) && !bytes.contains(&b'\\') {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        crate::pyrepr::PyBytes(bytes).to_string()
    }
}

impl fmt::Display for Tlvs {
    /// `authority example.com, ALPN h2, TLSv1.3, …`, for a debug line;
    /// every value escaped as `shown` says.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(a) = &self.authority {
            parts.push(format!("authority {}", shown(a.as_bytes())));
        }
        if let Some(a) = &self.alpn {
            parts.push(format!("ALPN {}", shown(a)));
        }
        if let Some(ssl) = &self.ssl {
            let mut s = String::from("SSL");
            for v in [&ssl.version, &ssl.cipher, &ssl.cn].into_iter().flatten() {
                s.push(' ');
                s.push_str(&shown(v.as_bytes()));
            }
            parts.push(s);
        }
        if let Some(id) = &self.aws_vpce_id {
            parts.push(format!("VPC endpoint {}", shown(id.as_bytes())));
        }
        if let Some(c) = self.crc32c {
            parts.push(format!("CRC32c {c:#010x} checked"));
        }
        if let Some(id) = &self.unique_id {
            if printable(id) {
                parts.push(format!("unique ID {}", shown(id)));
            } else {
                let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                parts.push(format!("unique ID {hex} (hex)"));
            }
        }
        if let Some(ns) = &self.netns {
            parts.push(format!("netns {}", shown(ns.as_bytes())));
        }
        for (kind, value) in &self.other {
            parts.push(format!("type {kind:#04x} of {} bytes", value.len()));
        }
        f.write_str(&parts.join(", "))
    }
}
