//! Writing PROXY headers: what `echo-client` and `echo-bench` send before
//! their data, and any header at all (TLVs, CRC32c, Unix paths) for tests
//! and tools. Written independently of the parser, so that each checks the
//! other, and both are checked against HAProxy's and nginx's.

use std::io::{self, Cursor, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::crc32c::crc32c;
use super::header::{Addresses, Command, Protocol, ProxyHeader, Ssl, Version};
use super::parse::{V1_SIGNATURE, V2_SIGNATURE};

/// Room for any header [`encode_stream`] writes: a v1 TCP6 line is at
/// most 104 bytes, a v2 IPv6 header 52.
pub const MAX_STREAM_HEADER: usize = 108;

/// Why a header cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// v1 carries TCP over IP only: no TLVs, UDP, Unix paths or LOCAL.
    #[error("a PROXY v1 header cannot carry {0}")]
    NotInV1(&'static str),
    /// A v2 header over 64 KiB, or a TLV over 64 KiB.
    #[error("the PROXY v2 header would be longer than 65,535 bytes")]
    TooLong,
    /// A Unix path longer than the 108 bytes v2 has for it.
    #[error("a Unix path in a PROXY v2 header is at most 108 bytes")]
    UnixPathTooLong,
}

/// The header of a TCP connection from `source` to `destination`, into
/// `out`, without allocating; returns its length. Addresses of two
/// families are both written as IPv6 (IPv4-mapped).
pub fn encode_stream(
    version: Version,
    source: SocketAddr,
    destination: SocketAddr,
    out: &mut [u8; MAX_STREAM_HEADER],
) -> usize {
    let (source, destination) = same_family(source, destination);
    let mut w = Cursor::new(&mut out[..]);
    // The buffer fits the longest header, so the writes cannot fail.
    let written = match version {
        Version::V1 => write_v1_inet(&mut w, source, destination),
        Version::V2 => write_v2_inet(&mut w, Protocol::Stream, source, destination, 0),
    };
    debug_assert!(written.is_ok());
    w.position() as usize
}

/// The header that names no client: v1 `UNKNOWN`, or v2 LOCAL.
pub fn encode_unknown(version: Version) -> &'static [u8] {
    match version {
        Version::V1 => b"PROXY UNKNOWN\r\n",
        Version::V2 => b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
    }
}

/// Both addresses in one family: IPv6 when they differ.
fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a.is_ipv4() == b.is_ipv4() {
        return (a, b);
    }
    let v6 = |s: SocketAddr| match s.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), s.port()),
        IpAddr::V6(_) => s,
    };
    (v6(a), v6(b))
}

fn write_v1_inet(
    w: &mut impl Write,
    source: SocketAddr,
    destination: SocketAddr,
) -> io::Result<()> {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    w.write_all(V1_SIGNATURE)?;
    write!(
        w,
        "{family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
}

/// The fixed part and the IP addresses of a v2 PROXY header, whose TLVs
/// (`tlv_len` bytes) the caller writes next.
fn write_v2_inet(
    w: &mut impl Write,
    protocol: Protocol,
    source: SocketAddr,
    destination: SocketAddr,
    tlv_len: usize,
) -> io::Result<()> {
    let proto = match protocol {
        Protocol::Stream => 0x1,
        Protocol::Datagram => 0x2,
    };
    let (family, address_len) = if source.is_ipv4() {
        (0x10, 12)
    } else {
        (0x20, 36)
    };
    let len = u16::try_from(address_len + tlv_len).map_err(|_| io::ErrorKind::InvalidInput)?;
    w.write_all(V2_SIGNATURE)?;
    w.write_all(&[0x21, family | proto])?;
    w.write_all(&len.to_be_bytes())?;
    for ip in [source.ip(), destination.ip()] {
        match ip {
            IpAddr::V4(ip) => w.write_all(&ip.octets())?,
            IpAddr::V6(ip) => w.write_all(&ip.octets())?,
        }
    }
    w.write_all(&source.port().to_be_bytes())?;
    w.write_all(&destination.port().to_be_bytes())
}

/// Any header: its version, command, addresses and, for v2, its TLVs.
/// With `tlvs.crc32c` set (to any value), the CRC32c TLV is written first
/// and filled with the header's real checksum. `len` is ignored.
pub fn encode(header: &ProxyHeader) -> Result<Vec<u8>, EncodeError> {
    match header.version {
        Version::V1 => encode_v1(header),
        Version::V2 => encode_v2(header),
    }
}

fn encode_v1(header: &ProxyHeader) -> Result<Vec<u8>, EncodeError> {
    if !header.tlvs.is_empty() {
        return Err(EncodeError::NotInV1("TLVs"));
    }
    if header.command == Command::Local {
        return Err(EncodeError::NotInV1("a LOCAL command"));
    }
    let mut out = Vec::with_capacity(MAX_STREAM_HEADER);
    match &header.addresses {
        Addresses::Unknown => out.extend_from_slice(encode_unknown(Version::V1)),
        Addresses::Inet {
            protocol: Protocol::Stream,
            source,
            destination,
        } => {
            let (s, d) = same_family(*source, *destination);
            // Writing to a Vec cannot fail.
            let _ = write_v1_inet(&mut out, s, d);
        }
        Addresses::Inet { .. } => return Err(EncodeError::NotInV1("UDP")),
        Addresses::Unix { .. } => return Err(EncodeError::NotInV1("Unix paths")),
    }
    Ok(out)
}

fn encode_v2(header: &ProxyHeader) -> Result<Vec<u8>, EncodeError> {
    let tlvs = encode_tlvs(header)?;
    let mut out = Vec::with_capacity(64 + tlvs.len());
    let local = header.command == Command::Local;
    match &header.addresses {
        Addresses::Inet {
            protocol,
            source,
            destination,
        } => {
            let (s, d) = same_family(*source, *destination);
            write_v2_inet(&mut out, *protocol, s, d, tlvs.len())
                .map_err(|_| EncodeError::TooLong)?;
            if local {
                out[12] = 0x20;
            }
        }
        Addresses::Unknown => {
            let len = u16::try_from(tlvs.len()).map_err(|_| EncodeError::TooLong)?;
            out.extend_from_slice(V2_SIGNATURE);
            out.extend_from_slice(&[if local { 0x20 } else { 0x21 }, 0x00]);
            out.extend_from_slice(&len.to_be_bytes());
        }
        Addresses::Unix {
            protocol,
            source,
            destination,
        } => {
            let len = u16::try_from(216 + tlvs.len()).map_err(|_| EncodeError::TooLong)?;
            let fam = match protocol {
                Protocol::Stream => 0x31,
                Protocol::Datagram => 0x32,
            };
            out.extend_from_slice(V2_SIGNATURE);
            out.extend_from_slice(&[if local { 0x20 } else { 0x21 }, fam]);
            out.extend_from_slice(&len.to_be_bytes());
            for path in [source, destination] {
                out.extend_from_slice(&unix_field(path)?);
            }
        }
    }
    let tlv_start = out.len();
    out.extend_from_slice(&tlvs);
    if header.tlvs.crc32c.is_some() {
        // The CRC32c TLV is first, its value zero until now.
        let at = tlv_start + 3;
        let sum = crc32c(&out);
        out[at..at + 4].copy_from_slice(&sum.to_be_bytes());
    }
    Ok(out)
}

/// A Unix path in its 108-byte, NUL-padded field.
fn unix_field(path: &Path) -> Result<[u8; 108], EncodeError> {
    let bytes = path.as_os_str().as_bytes();
    let mut field = [0u8; 108];
    field
        .get_mut(..bytes.len())
        .ok_or(EncodeError::UnixPathTooLong)?
        .copy_from_slice(bytes);
    Ok(field)
}

fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(value.len()).map_err(|_| EncodeError::TooLong)?;
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// The TLV block of a v2 header, the CRC32c first (zeroed) when asked for.
fn encode_tlvs(header: &ProxyHeader) -> Result<Vec<u8>, EncodeError> {
    let t = &header.tlvs;
    let mut out = Vec::new();
    if t.crc32c.is_some() {
        push_tlv(&mut out, 0x03, &[0; 4])?;
    }
    if let Some(v) = &t.alpn {
        push_tlv(&mut out, 0x01, v)?;
    }
    if let Some(v) = &t.authority {
        push_tlv(&mut out, 0x02, v.as_bytes())?;
    }
    if let Some(v) = &t.unique_id {
        push_tlv(&mut out, 0x05, v)?;
    }
    if let Some(ssl) = &t.ssl {
        push_tlv(&mut out, 0x20, &ssl_value(ssl)?)?;
    }
    if let Some(v) = &t.netns {
        push_tlv(&mut out, 0x30, v.as_bytes())?;
    }
    if let Some(v) = &t.aws_vpce_id {
        let mut value = vec![0x01];
        value.extend_from_slice(v.as_bytes());
        push_tlv(&mut out, 0xEA, &value)?;
    }
    for (kind, value) in &t.other {
        push_tlv(&mut out, *kind, value)?;
    }
    Ok(out)
}

fn ssl_value(ssl: &Ssl) -> Result<Vec<u8>, EncodeError> {
    let client = u8::from(ssl.client_ssl)
        | u8::from(ssl.client_cert_conn) << 1
        | u8::from(ssl.client_cert_sess) << 2;
    let mut out = vec![client];
    out.extend_from_slice(&ssl.verify.to_be_bytes());
    let subs = [
        (0x21, &ssl.version),
        (0x22, &ssl.cn),
        (0x23, &ssl.cipher),
        (0x24, &ssl.sig_alg),
        (0x25, &ssl.key_alg),
    ];
    for (kind, value) in subs {
        if let Some(v) = value {
            push_tlv(&mut out, kind, v.as_bytes())?;
        }
    }
    Ok(out)
}
