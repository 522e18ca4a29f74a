//! Reading a PROXY header out of the first bytes of a connection: pure
//! functions over a byte slice, no I/O.
//!
//! The framing is ours, the decoding is the `proxy-header` crate's. We
//! find where a header ends (the CRLF within 107 bytes for v1; 16 bytes
//! plus the declared length for v2) and hand the crate exactly one header,
//! so that its verdict is final: "too short" on a complete frame is a
//! malformed header, never a reason to wait, and no line longer than the
//! spec's 107 bytes is accepted. We then check what the crate leaves to the
//! receiver: v1's ports without leading zeros, v2's TLV framing, and the
//! CRC32c when one is present.
//!
//! Each call looks at everything received so far; a caller with more bytes
//! calls again. [`Parse::Undecided`] (the bytes so far are the start of a
//! signature, or none came) and [`Parse::Incomplete`] (a header has begun)
//! ask for more; the rest is final.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use proxy_header::{ParseConfig, ProxiedAddress};

use super::crc32c::Crc32c;
use super::header::{Addresses, Command, Protocol, ProxyHeader, Ssl, Tlvs, Version};

/// How a v1 header starts.
pub const V1_SIGNATURE: &[u8] = b"PROXY ";
/// How a v2 header starts.
pub const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included.
pub const V1_MAX_LEN: usize = 107;
/// The fixed part of a v2 header: signature, version and command, family
/// and protocol, length.
pub const V2_FIXED_LEN: usize = 16;
/// The longest v2 header: the fixed part and the largest length.
pub const V2_MAX_LEN: usize = V2_FIXED_LEN + u16::MAX as usize;

/// TLV types (proxy-protocol.txt, 2.2).
mod tlv {
    pub const ALPN: u8 = 0x01;
    pub const AUTHORITY: u8 = 0x02;
    pub const CRC32C: u8 = 0x03;
    pub const NOOP: u8 = 0x04;
    pub const UNIQUE_ID: u8 = 0x05;
    pub const SSL: u8 = 0x20;
    /// The SSL TLV's text sub-TLVs.
    pub const SSL_VERSION: u8 = 0x21;
    pub const SSL_CN: u8 = 0x22;
    pub const SSL_CIPHER: u8 = 0x23;
    pub const SSL_SIG_ALG: u8 = 0x24;
    pub const SSL_KEY_ALG: u8 = 0x25;
    pub const NETNS: u8 = 0x30;
    /// AWS's custom type, and its subtype for the VPC endpoint ID.
    pub const AWS: u8 = 0xEA;
    pub const AWS_VPCE_ID: u8 = 0x01;
}

/// What the bytes so far are.
// Made once per read of a header: not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// A complete header of `header.len` bytes; what follows is data.
    Header(ProxyHeader),
    /// A signature is there, the rest of the header is not yet.
    Incomplete,
    /// Too few bytes to tell: none, or the start of a signature
    /// (`PRO`, `\r\n\r\n`).
    Undecided,
    /// Not a PROXY header: the bytes are the peer's data.
    NotProxy,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A v1 line without its CRLF in the first 107 bytes.
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    /// A v1 line ended by a lone CR or LF.
    #[error("PROXY v1 line not ended by CRLF")]
    V1BadEnd,
    /// A v1 line that does not match the protocol.
    #[error("malformed PROXY v1 line")]
    V1Malformed,
    /// A v2 version other than 2, or a command other than LOCAL or PROXY.
    #[error("PROXY v2 version/command byte {0:#04x} is not 0x20 or 0x21")]
    V2VersionCommand(u8),
    /// A v2 family/protocol byte the spec does not define.
    #[error("PROXY v2 family/protocol byte {0:#04x} is not one the protocol defines")]
    V2Family(u8),
    /// A v2 length shorter than its addresses.
    #[error("PROXY v2 length {len} is too short for its addresses ({need} bytes)")]
    V2Length {
        /// The declared length.
        len: usize,
        /// What the family's addresses need.
        need: usize,
    },
    /// A v2 header the decoder rejects.
    #[error("malformed PROXY v2 header")]
    V2Malformed,
    /// A TLV that runs past the header, or a malformed known one.
    #[error("malformed PROXY v2 TLV (type {0:#04x})")]
    V2Tlv(u8),
    /// The CRC32c TLV does not match the header.
    #[error("PROXY v2 CRC32c mismatch: header says {sent:#010x}, computed {computed:#010x}")]
    Crc32c {
        /// The checksum the header carries.
        sent: u32,
        /// The checksum of the header as received.
        computed: u32,
    },
}

/// Looks at the first bytes of a connection; see the module documentation.
pub fn parse(buf: &[u8]) -> Result<Parse, HeaderError> {
    if buf.starts_with(V1_SIGNATURE) {
        parse_v1(buf)
    } else if buf.starts_with(V2_SIGNATURE) {
        parse_v2(buf)
    } else if V1_SIGNATURE.starts_with(buf) || V2_SIGNATURE.starts_with(buf) {
        Ok(Parse::Undecided)
    } else {
        Ok(Parse::NotProxy)
    }
}

/// Frames a v1 line: its CRLF must be within the first 107 bytes.
fn parse_v1(buf: &[u8]) -> Result<Parse, HeaderError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(end) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        // The CRLF needs two bytes: without one in the first 106, it cannot
        // end the line by the 107th.
        return if buf.len() >= V1_MAX_LEN - 1 {
            Err(HeaderError::V1TooLong)
        } else {
            Ok(Parse::Incomplete)
        };
    };
    if window[end] == b'\n' {
        return Err(HeaderError::V1BadEnd);
    }
    match buf.get(end + 1) {
        None if end + 2 <= V1_MAX_LEN => return Ok(Parse::Incomplete),
        Some(b'\n') if end + 2 <= V1_MAX_LEN => {}
        None => return Err(HeaderError::V1TooLong),
        Some(_) => return Err(HeaderError::V1BadEnd),
    }
    let line = &buf[..end + 2];
    decode_v1(line).map(Parse::Header)
}

/// Decodes one complete v1 line, CRLF included.
fn decode_v1(line: &[u8]) -> Result<ProxyHeader, HeaderError> {
    let config = ParseConfig {
        include_tlvs: false,
        allow_v1: true,
        allow_v2: false,
    };
    let (header, n) =
        proxy_header::ProxyHeader::parse(line, config).map_err(|_| HeaderError::V1Malformed)?;
    if n != line.len() {
        return Err(HeaderError::V1Malformed);
    }
    let text = &line[V1_SIGNATURE.len()..line.len() - 2];
    let addresses = match header.proxied_address() {
        None => {
            // `UNKNOWN`, then anything up to the CRLF, which is ignored.
            if !(text == b"UNKNOWN" || text.starts_with(b"UNKNOWN ")) {
                return Err(HeaderError::V1Malformed);
            }
            Addresses::Unknown
        }
        Some(a) => {
            // The crate lets `+1` and `0080` through; the spec does not.
            let fields: Vec<&[u8]> = text.split(|&b| b == b' ').collect();
            let canonical_port = |p: &[u8]| {
                p == b"0" || (p.first() != Some(&b'0') && p.iter().all(u8::is_ascii_digit))
            };
            if fields.len() != 5 || !fields[3..].iter().all(|p| canonical_port(p)) {
                return Err(HeaderError::V1Malformed);
            }
            inet(a)
        }
    };
    Ok(ProxyHeader {
        version: Version::V1,
        command: Command::Proxy,
        addresses,
        tlvs: Tlvs::default(),
        len: line.len(),
    })
}

fn inet(a: &ProxiedAddress) -> Addresses {
    Addresses::Inet {
        protocol: match a.protocol {
            proxy_header::Protocol::Stream => Protocol::Stream,
            proxy_header::Protocol::Datagram => Protocol::Datagram,
        },
        source: a.source,
        destination: a.destination,
    }
}

/// The length of a v2 family's addresses, for the family/protocol bytes
/// the spec defines.
fn v2_address_len(family: u8) -> Option<usize> {
    match family {
        0x00 => Some(0),
        0x11 | 0x12 => Some(12),
        0x21 | 0x22 => Some(36),
        0x31 | 0x32 => Some(216),
        _ => None,
    }
}

/// Frames a v2 header: the fixed part is checked as soon as it is there,
/// so a bad version or family is refused without waiting for the length.
fn parse_v2(buf: &[u8]) -> Result<Parse, HeaderError> {
    if buf.len() < V2_FIXED_LEN {
        return Ok(Parse::Incomplete);
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    if ver_cmd != 0x20 && ver_cmd != 0x21 {
        return Err(HeaderError::V2VersionCommand(ver_cmd));
    }
    let need = v2_address_len(family).ok_or(HeaderError::V2Family(family))?;
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len < need {
        return Err(HeaderError::V2Length { len, need });
    }
    let total = V2_FIXED_LEN + len;
    if buf.len() < total {
        return Ok(Parse::Incomplete);
    }
    decode_v2(&buf[..total], ver_cmd == 0x20, family, need).map(Parse::Header)
}

/// Decodes one complete v2 header.
fn decode_v2(
    frame: &[u8],
    local: bool,
    family: u8,
    address_len: usize,
) -> Result<ProxyHeader, HeaderError> {
    let config = ParseConfig {
        include_tlvs: false,
        allow_v1: false,
        allow_v2: true,
    };
    let (header, n) =
        proxy_header::ProxyHeader::parse(frame, config).map_err(|_| HeaderError::V2Malformed)?;
    if n != frame.len() {
        return Err(HeaderError::V2Malformed);
    }
    let mut parsed = ProxyHeader {
        version: Version::V2,
        command: if local {
            Command::Local
        } else {
            Command::Proxy
        },
        addresses: Addresses::Unknown,
        tlvs: Tlvs::default(),
        len: frame.len(),
    };
    // LOCAL: "the receiver must … discard the protocol block".
    if local {
        return Ok(parsed);
    }
    let addresses_end = V2_FIXED_LEN + address_len;
    parsed.addresses = match (header.proxied_address(), family) {
        (Some(a), _) => inet(a),
        (None, 0x31 | 0x32) => {
            let block = &frame[V2_FIXED_LEN..addresses_end];
            Addresses::Unix {
                protocol: if family == 0x31 {
                    Protocol::Stream
                } else {
                    Protocol::Datagram
                },
                source: unix_path(&block[..108]),
                destination: unix_path(&block[108..]),
            }
        }
        (None, _) => Addresses::Unknown,
    };
    parsed.tlvs = decode_tlvs(frame, addresses_end)?;
    Ok(parsed)
}

/// A Unix socket path out of its 108-byte field: up to the first NUL.
fn unix_path(field: &[u8]) -> PathBuf {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    PathBuf::from(OsStr::from_bytes(&field[..end]))
}

/// Walks the TLVs of a complete v2 header from `start`, checking their
/// framing and the CRC32c, and keeps what they say.
fn decode_tlvs(frame: &[u8], start: usize) -> Result<Tlvs, HeaderError> {
    let mut tlvs = Tlvs::default();
    let mut at = start;
    while at < frame.len() {
        let Some(head) = frame.get(at..at + 3) else {
            return Err(HeaderError::V2Tlv(frame[at]));
        };
        let kind = head[0];
        let value_at = at + 3;
        let end = value_at + usize::from(u16::from_be_bytes([head[1], head[2]]));
        let Some(value) = frame.get(value_at..end) else {
            return Err(HeaderError::V2Tlv(kind));
        };
        match kind {
            tlv::ALPN => tlvs.alpn = Some(value.to_vec()),
            tlv::AUTHORITY => tlvs.authority = Some(text(value)),
            tlv::CRC32C => {
                let sent = <[u8; 4]>::try_from(value).map_err(|_| HeaderError::V2Tlv(kind))?;
                if tlvs.crc32c.is_some() {
                    return Err(HeaderError::V2Tlv(kind));
                }
                let sent = u32::from_be_bytes(sent);
                let computed = Crc32c::default()
                    .update(&frame[..value_at])
                    .update(&[0; 4])
                    .update(&frame[end..])
                    .finish();
                if sent != computed {
                    return Err(HeaderError::Crc32c { sent, computed });
                }
                tlvs.crc32c = Some(sent);
            }
            tlv::NOOP => {}
            tlv::UNIQUE_ID => tlvs.unique_id = Some(value.to_vec()),
            tlv::SSL => tlvs.ssl = Some(ssl(value).ok_or(HeaderError::V2Tlv(kind))?),
            tlv::NETNS => tlvs.netns = Some(text(value)),
            tlv::AWS if value.first() == Some(&tlv::AWS_VPCE_ID) => {
                tlvs.aws_vpce_id = Some(text(&value[1..]));
            }
            _ => tlvs.other.push((kind, value.to_vec())),
        }
        at = end;
    }
    Ok(tlvs)
}

/// A text TLV: UTF-8 by the spec; anything else is shown, not refused.
fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// The SSL TLV, through the crate's decoder; `None` when it is too short
/// for its fixed part.
fn ssl(value: &[u8]) -> Option<Ssl> {
    let Ok(proxy_header::Tlv::Ssl(info)) = proxy_header::Tlv::decode(tlv::SSL, value) else {
        return None;
    };
    // The crate gives text sub-TLVs only when they are UTF-8; read them
    // here so that every text TLV follows one rule (`text`: U+FFFD for
    // what is not UTF-8), the CN of a certificate in Latin-1 included.
    let sub = |wanted: u8| sub_tlv(&value[5..], wanted).map(text);
    Some(Ssl {
        client_ssl: info.client_ssl(),
        client_cert_conn: info.client_cert_conn(),
        client_cert_sess: info.client_cert_sess(),
        verify: info.verify(),
        version: sub(tlv::SSL_VERSION),
        cn: sub(tlv::SSL_CN),
        cipher: sub(tlv::SSL_CIPHER),
        sig_alg: sub(tlv::SSL_SIG_ALG),
        key_alg: sub(tlv::SSL_KEY_ALG),
    })
}

/// The value of the first sub-TLV of type `wanted` in `subs` (type, a
/// 2-byte big-endian length, the value; as the SSL TLV nests them).
fn sub_tlv(subs: &[u8], wanted: u8) -> Option<&[u8]> {
    let mut at = 0;
    while let Some(&[kind, hi, lo]) = subs.get(at..at + 3) {
        let end = at + 3 + usize::from(u16::from_be_bytes([hi, lo]));
        let value = subs.get(at + 3..end)?;
        if kind == wanted {
            return Some(value);
        }
        at = end;
    }
    None
}
