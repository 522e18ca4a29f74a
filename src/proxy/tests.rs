//! The parser and encoder against the spec's examples, hostile input, and
//! each other. Headers captured from HAProxy, nginx and curl are checked in
//! `tests/proxy_corpus.rs`; the servers themselves in `tests/proxy_interop.rs`.

use std::net::SocketAddr;

use super::*;

const V2_SIG: &[u8] = parse::V2_SIGNATURE;

fn v2(rest: &[u8]) -> Vec<u8> {
    [V2_SIG, rest].concat()
}

fn header(buf: &[u8]) -> ProxyHeader {
    match parse(buf) {
        Ok(Parse::Header(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn inet(source: &str, destination: &str) -> Addresses {
    Addresses::Inet {
        protocol: Protocol::Stream,
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

#[test]
fn the_specs_v1_examples_parse() {
    let h = header(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n");
    assert_eq!(h.addresses, inet("192.168.0.1:56324", "192.168.0.11:443"));
    assert_eq!(h.len, 47);
    assert_eq!(h.client(), Some("192.168.0.1:56324".parse().unwrap()));
    let h = header(b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    assert_eq!(h.len, 56);
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY TCP6 {f} {f} 65535 65535\r\n");
    assert_eq!(header(line.as_bytes()).len, 104);
    let h = header(b"PROXY UNKNOWN\r\n");
    assert_eq!(
        (h.client(), h.len, h.addresses),
        (None, 15, Addresses::Unknown)
    );
    // The worst case: 107 bytes, all of them ignored after UNKNOWN.
    let line = format!("PROXY UNKNOWN {f} {f} 65535 65535\r\n");
    assert_eq!(line.len(), 107);
    assert_eq!(header(line.as_bytes()).addresses, Addresses::Unknown);
}

#[test]
fn v1_lines_that_break_the_rules_are_refused() {
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let too_long = format!("PROXY UNKNOWN {f} {f} 65535 655350\r\n");
    let no_crlf = format!("PROXY UNKNOWN {f} {f} 65535 65535 ");
    let cases: &[&[u8]] = &[
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY \r\n",
        too_long.as_bytes(),
        no_crlf.as_bytes(),
    ];
    for case in cases {
        assert!(
            parse(case).is_err(),
            "{:?}: {:?}",
            String::from_utf8_lossy(case),
            parse(case)
        );
    }
}

#[test]
fn a_v1_line_may_arrive_in_pieces() {
    let line = b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n";
    for cut in 0..line.len() {
        let want = if cut < 6 {
            Parse::Undecided
        } else {
            Parse::Incomplete
        };
        assert_eq!(parse(&line[..cut]), Ok(want), "cut at {cut}");
    }
    assert!(matches!(parse(line), Ok(Parse::Header(_))));
}

#[test]
fn other_first_bytes_are_data() {
    for data in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"PROXX",
        b"\x16\x03\x01",
        b"\r\n\r\nX",
        b"proxy ",
    ] {
        assert_eq!(parse(data), Ok(Parse::NotProxy), "{data:?}");
    }
    for start in [&b""[..], b"P", b"PROX", b"\r", b"\r\n\r\n\0\r\nQUI"] {
        assert_eq!(parse(start), Ok(Parse::Undecided), "{start:?}");
    }
}

#[test]
fn v2_commands_families_and_lengths() {
    // PROXY, TCP over IPv4, then data.
    let h = header(&v2(
        b"\x21\x11\x00\x0c\x7f\x00\x00\x01\xc0\x00\x02\x01\x30\x39\x01\xbbdata",
    ));
    assert_eq!(h.addresses, inet("127.0.0.1:12345", "192.0.2.1:443"));
    assert_eq!(
        (h.version, h.command, h.len),
        (Version::V2, Command::Proxy, 28)
    );
    // UDP over IPv6.
    let mut udp6 = v2(b"\x21\x22\x00\x24");
    udp6.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    udp6.extend_from_slice(&[0; 15]);
    udp6.extend_from_slice(&[1, 0, 53, 0, 54]);
    let h = header(&udp6);
    let want: SocketAddr = "[2001:db8::1]:53".parse().unwrap();
    assert!(
        matches!(h.addresses, Addresses::Inet { protocol: Protocol::Datagram, source, .. } if source == want)
    );
    // LOCAL: the block is ignored, whatever its family says.
    let h = header(&v2(
        b"\x20\x11\x00\x0c\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02",
    ));
    assert_eq!((h.command, h.client()), (Command::Local, None));
    assert_eq!(header(&v2(b"\x20\x00\x00\x00")).len, 16);
    // AF_UNSPEC under PROXY: no address, the socket's stands.
    assert_eq!(header(&v2(b"\x21\x00\x00\x00")).client(), None);
    // Unix paths.
    let mut unix = v2(b"\x21\x31\x00\xd8");
    let mut field = [0u8; 108];
    field[..8].copy_from_slice(b"/run/src");
    unix.extend_from_slice(&field);
    field[..8].copy_from_slice(b"/run/dst");
    unix.extend_from_slice(&field);
    let h = header(&unix);
    assert_eq!(
        h.addresses,
        Addresses::Unix {
            protocol: Protocol::Stream,
            source: "/run/src".into(),
            destination: "/run/dst".into()
        }
    );
    assert_eq!((h.kind(), h.client()), ("PROXY v2 UNIX".to_string(), None));
}

#[test]
fn v2_headers_the_spec_forbids_are_refused_without_waiting() {
    use HeaderError::*;
    // Each is refused as soon as its fixed 16 bytes are in, long before
    // the length it announces.
    let cases: &[(&[u8], HeaderError)] = &[
        (b"\x11\x11\xff\xff", V2VersionCommand(0x11)),
        (b"\x22\x11\xff\xff", V2VersionCommand(0x22)),
        (b"\x21\x01\xff\xff", V2Family(0x01)),
        (b"\x21\x10\xff\xff", V2Family(0x10)),
        (b"\x21\x13\xff\xff", V2Family(0x13)),
        (b"\x21\x41\xff\xff", V2Family(0x41)),
        (b"\x21\x11\x00\x0b", V2Length { len: 11, need: 12 }),
        (b"\x21\x21\x00\x0c", V2Length { len: 12, need: 36 }),
        (b"\x21\x31\x00\x00", V2Length { len: 0, need: 216 }),
    ];
    for (rest, want) in cases {
        assert_eq!(parse(&v2(rest)), Err(want.clone()), "{rest:?}");
    }
    // A length past what came is only incomplete: more may come.
    assert_eq!(
        parse(&v2(b"\x21\x11\xff\xff\x01\x02")),
        Ok(Parse::Incomplete)
    );
    assert_eq!(parse(&v2(b"\x21\x11")), Ok(Parse::Incomplete));
}

#[test]
fn v2_tlvs_are_read_and_their_framing_checked() {
    let mut h = v2(b"\x21\x11\x00\x00\x7f\x00\x00\x01\x7f\x00\x00\x02\x00\x01\x00\x02");
    let tlvs: &[u8] = b"\x01\x00\x02h2\x02\x00\x0bexample.com\x04\x00\x02\0\0\
        \xea\x00\x0d\x01vpce-0123abc\x20\x00\x0d\x05\x00\x00\x00\x00\x22\x00\x05alice\
        \x05\x00\x03abc\x30\x00\x03ns1\xe1\x00\x01x";
    h.extend_from_slice(tlvs);
    let len = (h.len() - 16) as u16;
    h[14..16].copy_from_slice(&len.to_be_bytes());
    let t = header(&h).tlvs;
    assert_eq!(t.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(t.authority.as_deref(), Some("example.com"));
    assert_eq!(t.aws_vpce_id.as_deref(), Some("vpce-0123abc"));
    let ssl = t.ssl.as_ref().unwrap();
    assert!(ssl.client_ssl && !ssl.client_cert_conn && ssl.client_cert_sess);
    assert_eq!((ssl.verify, ssl.cn.as_deref()), (0, Some("alice")));
    assert_eq!(t.unique_id.as_deref(), Some(&b"abc"[..]));
    assert_eq!(t.netns.as_deref(), Some("ns1"));
    assert_eq!(t.other, vec![(0xe1, b"x".to_vec())]);
    assert_eq!(t.crc32c, None);
    // A TLV that runs past the header, a cut-off TLV head, a short SSL TLV.
    for bad in [&b"\x01\x00\x05h2"[..], b"\x01\x00", b"\x20\x00\x02\x01\x00"] {
        let mut h = v2(b"\x21\x00\x00\x00");
        h.extend_from_slice(bad);
        h[15] = bad.len() as u8;
        assert!(
            matches!(parse(&h), Err(HeaderError::V2Tlv(_))),
            "{bad:?}: {:?}",
            parse(&h)
        );
    }
}

fn sample(version: Version) -> ProxyHeader {
    ProxyHeader {
        version,
        command: Command::Proxy,
        addresses: inet("[2001:db8::7]:51000", "[2001:db8::1]:443"),
        tlvs: Tlvs::default(),
        len: 0,
    }
}

#[test]
fn a_crc32c_is_checked_and_a_flipped_bit_refused() {
    let mut h = sample(Version::V2);
    h.tlvs.crc32c = Some(0);
    h.tlvs.authority = Some("example.com".into());
    let wire = encode(&h).unwrap();
    let parsed = header(&wire);
    assert_eq!(parsed.tlvs.authority.as_deref(), Some("example.com"));
    let sent = u32::from_be_bytes(wire[55..59].try_into().unwrap());
    assert_eq!(parsed.tlvs.crc32c, Some(sent));
    // Every byte but the CRC32c TLV's type (52): flipped, the TLV is
    // another type, and the header simply has no checksum.
    for byte in (16..wire.len()).filter(|&b| b != 52) {
        for bit in 0..8 {
            let mut bad = wire.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                !matches!(parse(&bad), Ok(Parse::Header(_))),
                "byte {byte} bit {bit} flipped, and still accepted"
            );
        }
    }
    let mut wrong = wire.clone();
    wrong[58] ^= 0xff;
    assert!(matches!(parse(&wrong), Err(HeaderError::Crc32c { .. })));
}

#[test]
fn what_is_encoded_parses_back() {
    let mut v1 = sample(Version::V1);
    let wire = encode(&v1).unwrap();
    assert_eq!(wire, b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n");
    v1.len = wire.len();
    assert_eq!(header(&wire), v1);
    let mut full = sample(Version::V2);
    full.tlvs = Tlvs {
        alpn: Some(b"h2".to_vec()),
        authority: Some("echo.example".into()),
        crc32c: Some(0),
        unique_id: Some(vec![7; 128]),
        ssl: Some(Ssl {
            client_ssl: true,
            version: Some("TLSv1.3".into()),
            cipher: Some("TLS_AES_128_GCM_SHA256".into()),
            ..Ssl::default()
        }),
        netns: Some("blue".into()),
        aws_vpce_id: Some("vpce-08d2bf15fac5001c9".into()),
        other: vec![(0xe5, vec![1, 2, 3])],
    };
    let wire = encode(&full).unwrap();
    let back = header(&wire);
    full.len = wire.len();
    full.tlvs.crc32c = back.tlvs.crc32c;
    assert!(back.tlvs.crc32c.is_some());
    assert_eq!(back, full);
    assert_eq!(
        encode(&ProxyHeader {
            tlvs: full.tlvs.clone(),
            ..sample(Version::V1)
        }),
        Err(EncodeError::NotInV1("TLVs"))
    );
}

#[test]
fn stream_headers_mix_families_as_ipv6() {
    let mut buf = [0u8; encode::MAX_STREAM_HEADER];
    let a: SocketAddr = "192.0.2.1:5".parse().unwrap();
    let b: SocketAddr = "[::1]:7".parse().unwrap();
    let n = encode_stream(Version::V1, a, b, &mut buf);
    assert_eq!(&buf[..n], b"PROXY TCP6 ::ffff:192.0.2.1 ::1 5 7\r\n");
    let n = encode_stream(Version::V2, a, b, &mut buf);
    assert_eq!(n, 52);
    assert_eq!(
        header(&buf[..n]).client(),
        Some("[::ffff:192.0.2.1]:5".parse().unwrap())
    );
    // The longest: v1 TCP6 with full addresses.
    let f: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
        .parse()
        .unwrap();
    assert_eq!(encode_stream(Version::V1, f, f, &mut buf), 104);
}

#[test]
fn modes_parse() {
    assert_eq!("optional".parse(), Ok(ProxyMode::Optional));
    assert!("on".parse::<ProxyMode>().is_err());
}

/// A v2 PROXY header from 127.0.0.1:1 to 127.0.0.2:2 with `tlvs`.
fn v2_with_tlvs(tlvs: &[u8]) -> Vec<u8> {
    let mut h = v2(b"\x21\x11\x00\x00\x7f\x00\x00\x01\x7f\x00\x00\x02\x00\x01\x00\x02");
    h.extend_from_slice(tlvs);
    let len = (h.len() - 16) as u16;
    h[14..16].copy_from_slice(&len.to_be_bytes());
    h
}

/// Every text TLV follows one rule: what is not UTF-8 shows U+FFFD, the
/// SSL TLV's CN included (the crate it is decoded with drops it).
#[test]
fn text_that_is_not_utf8_is_shown_the_same_way_in_every_tlv() {
    let h = v2_with_tlvs(
        b"\x02\x00\x04caf\xe9\x20\x00\x16\x05\x00\x00\x00\x00\x22\x00\x04caf\xe9\x21\x00\x07TLSv1.3",
    );
    let t = header(&h).tlvs;
    assert_eq!(t.authority.as_deref(), Some("caf\u{fffd}"));
    let ssl = t.ssl.as_ref().unwrap();
    assert_eq!(ssl.cn.as_deref(), Some("caf\u{fffd}"));
    assert_eq!(ssl.version.as_deref(), Some("TLSv1.3"));
}

/// The TLVs a log line shows cannot forge another line: a newline, a
/// carriage return or an escape sequence in any text TLV is escaped as
/// Python's repr escapes data; printable values stay as they are, and a
/// printable unique ID (HAProxy's) is shown as its text.
#[test]
fn tlvs_in_a_log_line_are_escaped() {
    let h = v2_with_tlvs(
        b"\x02\x00\x1bx\nmain: closing server\r\x1b[2J\x01\x00\x02h2\
          \x30\x00\x05n\ns\x1b1\x05\x00\x0aRG1dGa7-rl\xea\x00\x05\x01v\nx\r",
    );
    let shown = header(&h).tlvs.to_string();
    assert!(
        !shown.contains('\n') && !shown.contains('\r') && !shown.contains('\x1b'),
        "{shown:?}"
    );
    assert!(
        shown.contains(r"authority b'x\nmain: closing server\r\x1b[2J'"),
        "{shown}"
    );
    assert!(shown.contains("ALPN h2"), "{shown}");
    assert!(shown.contains(r"netns b'n\ns\x1b1'"), "{shown}");
    assert!(shown.contains(r"VPC endpoint b'v\nx\r'"), "{shown}");
    assert!(shown.contains("unique ID RG1dGa7-rl"), "{shown}");
    let binary = v2_with_tlvs(b"\x05\x00\x03\x00\xff\x10");
    assert!(
        header(&binary)
            .tlvs
            .to_string()
            .contains("unique ID 00ff10 (hex)")
    );
}
