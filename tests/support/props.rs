//! The properties the parsers and the bytes repr must have, for any input.
//! Each function takes raw bytes and panics when a property fails. They
//! are shared by three callers: the libFuzzer targets in `fuzz/` (which
//! include this file by path), the bounded proptest run in `tests/fuzz.rs`,
//! and the replay of saved crash inputs in `fuzz/regressions/`.
//!
//! Only `echoes` and `std` are used here, so the fuzz crate needs nothing
//! else to include it.
#![allow(dead_code)]

use std::time::Duration;

use echoes::Addr;
use echoes::fuzzing::PyBytes;
use echoes::proxy::{self, Parse, ProxyHeader};
use echoes::units::{format_duration, parse_duration, parse_size};

/// Any text parses or is rejected without a panic, and an address that
/// parses is displayed as text that parses back to the same address.
pub fn addr(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(addr) = text.parse::<Addr>() else {
        return;
    };
    let shown = addr.to_string();
    match shown.parse::<Addr>() {
        Ok(again) => assert_eq!(
            again, addr,
            "{text:?} parsed as {addr:?}, shown as {shown:?}, which parses differently"
        ),
        Err(e) => panic!("{text:?} parsed as {addr:?}, shown as {shown:?}, which is rejected: {e}"),
    }
}

/// Durations and sizes: any text parses or is rejected without a panic; a
/// duration that parses is displayed as text that parses back to it (to
/// the display's resolution, a microsecond); a size parses back from its
/// plain number of bytes.
pub fn units(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = parse_duration(&text) {
        duration_round_trips(d);
    }
    if let Ok(n) = parse_size(&text) {
        assert_eq!(parse_size(&n.to_string()), Ok(n), "size {text:?}");
    }
}

/// `parse_duration(format_duration(d))` is `d` to the microsecond.
pub fn duration_round_trips(d: Duration) {
    let shown = format_duration(d);
    let whole_micros = d - Duration::from_nanos(u64::from(d.subsec_nanos() % 1000));
    assert_eq!(
        parse_duration(&shown),
        Ok(whole_micros),
        "{d:?} shown as {shown:?}"
    );
}

/// The repr is printable ASCII only, quoted as Python quotes it, and reads
/// back (as a Python bytes literal would) to exactly the input.
pub fn pyrepr(data: &[u8]) {
    let repr = PyBytes(data).to_string();
    assert!(
        repr.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "not printable ASCII: {repr:?}"
    );
    assert_eq!(
        unrepr(&repr).as_deref(),
        Ok(data),
        "{repr:?} does not read back to the input"
    );
}

/// Reads a Python bytes literal in the forms Python's `repr` writes
/// (`b'..'` or `b".."`, escapes `\\ \' \" \t \n \r \xhh`), strictly: an
/// unescaped closing quote inside, or any other escape, is an error.
pub fn unrepr(repr: &str) -> Result<Vec<u8>, String> {
    let body = repr.strip_prefix('b').ok_or("no b prefix")?;
    let quote = match body.as_bytes().first() {
        Some(&q @ (b'\'' | b'"')) => q,
        _ => return Err("no opening quote".into()),
    };
    let inner = body[1..]
        .strip_suffix(quote as char)
        .ok_or("no closing quote")?
        .as_bytes();
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        if b == quote {
            return Err(format!("unescaped quote at {i}"));
        }
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let esc = *inner.get(i + 1).ok_or("dangling backslash")?;
        i += 2;
        out.push(match esc {
            b'\\' => b'\\',
            b'\'' => b'\'',
            b'"' => b'"',
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            b'x' => {
                let hex = inner.get(i..i + 2).ok_or("short \\x escape")?;
                i += 2;
                let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                if hex.bytes().any(|c| c.is_ascii_uppercase()) {
                    return Err(format!("upper-case \\x{hex}"));
                }
                u8::from_str_radix(hex, 16).map_err(|e| format!("\\x{hex}: {e}"))?
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        });
    }
    Ok(out)
}

/// The PROXY header parser, on any bytes: never panics; a header is no
/// longer than the bytes (v1: than 107), every strict prefix of it asks
/// for more (never an error, never "data"), the bytes after it do not
/// change it, and it encodes to bytes that parse back to it. "Incomplete"
/// is never said of more bytes than a header can have.
pub fn proxy(data: &[u8]) {
    let parsed = proxy::parse(data);
    let header = match parsed {
        Ok(Parse::Header(h)) => h,
        Ok(Parse::Incomplete | Parse::Undecided) => {
            assert!(
                data.len() < proxy::V2_MAX_LEN,
                "incomplete at {} bytes",
                data.len()
            );
            return;
        }
        Ok(Parse::NotProxy) | Err(_) => return,
    };
    assert!(header.len <= data.len(), "{} > {}", header.len, data.len());
    if header.version == proxy::Version::V1 {
        assert!(
            header.len <= proxy::V1_MAX_LEN,
            "v1 of {} bytes",
            header.len
        );
    }
    let frame = &data[..header.len];
    assert_eq!(proxy::parse(frame), Ok(Parse::Header(header.clone())));
    // Every prefix (a sample of 256 for long ones) asks for more.
    let step = (header.len / 256).max(1);
    for cut in (0..header.len).step_by(step) {
        match proxy::parse(&frame[..cut]) {
            Ok(Parse::Incomplete | Parse::Undecided) => {}
            other => panic!("prefix of {cut} of a {}-byte header: {other:?}", header.len),
        }
    }
    round_trips(&header);
}

/// `header` encodes to bytes that parse back to the same header (its
/// length and checksum aside, which encoding recomputes).
pub fn round_trips(header: &ProxyHeader) {
    let Ok(wire) = proxy::encode(header) else {
        // v1 cannot carry everything; v2 can, within 64 KiB.
        assert_eq!(
            header.version,
            proxy::Version::V1,
            "{header:?} does not encode"
        );
        return;
    };
    let again = match proxy::parse(&wire) {
        Ok(Parse::Header(h)) => h,
        other => panic!("{header:?} encoded as {wire:?}, which parses as {other:?}"),
    };
    assert_eq!(again.len, wire.len());
    let strip = |h: &ProxyHeader| {
        let mut h = h.clone();
        h.len = 0;
        h.tlvs.crc32c = h.tlvs.crc32c.map(|_| 0);
        h
    };
    assert_eq!(strip(&again), strip(header), "encoded as {wire:?}");
}
