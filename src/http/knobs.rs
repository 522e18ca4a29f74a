//! The knobs a request can turn, as query parameters or `x-echo-*`
//! headers (a query parameter wins over its header):
//!
//! | query | header | what it does |
//! | --- | --- | --- |
//! | `status=503` | `x-echo-status: 503` | answer with this status (200 to 599) |
//! | `delay=250ms` | `x-echo-delay: 250ms` | wait this long before answering (at most `--http-max-delay`) |
//! | `size=64KiB` | `x-echo-size: 64KiB` | answer with a body of this many bytes of [the pattern](super::pattern) (at most `--http-max-size`) |
//! | `close` | `x-echo-close: 1` | close the connection after the answer |
//! | `echo_body` | `x-echo-body: 1` | answer with the request body as it came, nothing around it |
//!
//! A knob out of range or malformed, or an `x-echo-*` header that is no
//! knob, is a 400 that says which and why. Other query parameters are
//! the client's own and are only reflected.

use std::time::Duration;

use hyper::HeaderMap;
use hyper::StatusCode;

use crate::units::{format_duration, parse_duration, parse_size};

/// The knobs of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Knobs {
    /// The status to answer with, instead of 200.
    pub status: Option<StatusCode>,
    /// How long to wait before answering.
    pub delay: Duration,
    /// Answer with this many bytes of the pattern instead of a reflection.
    pub size: Option<u64>,
    /// Close the connection after the answer.
    pub close: bool,
    /// Answer with the request body as it came.
    pub echo_body: bool,
}

/// The bounds the server puts on knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest `delay`.
    pub max_delay: Duration,
    /// The largest `size`, in bytes.
    pub max_size: u64,
}

/// The header prefix of knobs.
const HEADER_PREFIX: &str = "x-echo-";

/// Every knob: its query name and its header name.
const KNOBS: [(&str, &str); 5] = [
    ("status", "x-echo-status"),
    ("delay", "x-echo-delay"),
    ("size", "x-echo-size"),
    ("close", "x-echo-close"),
    ("echo_body", "x-echo-body"),
];

impl Knobs {
    /// Reads the knobs of a request from its query and headers, within
    /// `limits`; the error says what is wrong, for a 400.
    pub fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        limits: Limits,
    ) -> Result<Knobs, String> {
        let mut knobs = Knobs::default();
        for (name, value) in headers {
            let name = name.as_str();
            if !name.starts_with(HEADER_PREFIX) {
                continue;
            }
            let Some((knob, _)) = KNOBS.iter().find(|(_, header)| *header == name) else {
                return Err(format!(
                    "unknown knob header {name}; the knob headers are {}",
                    KNOBS.map(|(_, h)| h).join(", ")
                ));
            };
            let value = value
                .to_str()
                .map_err(|_| format!("{name}: the value is not text"))?;
            knobs.set(knob, Some(value.trim()), limits, name)?;
        }
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            if let Some((knob, _)) = KNOBS.iter().find(|(q, _)| *q == key) {
                let value = value.map(percent_decode);
                knobs.set(knob, value.as_deref(), limits, key)?;
            }
        }
        if knobs.size.is_some() && knobs.echo_body {
            return Err("size and echo_body cannot go together: pick one body".into());
        }
        Ok(knobs)
    }

    fn set(
        &mut self,
        knob: &str,
        value: Option<&str>,
        limits: Limits,
        shown: &str,
    ) -> Result<(), String> {
        let value_or = |what: &str| value.ok_or_else(|| format!("{shown} needs a value: {what}"));
        match knob {
            "status" => {
                let v = value_or("a status code, 200 to 599")?;
                let code = v
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (200..=599).contains(c))
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .ok_or_else(|| format!("{shown}={v}: a status is a number from 200 to 599"))?;
                self.status = Some(code);
            }
            "delay" => {
                let v = value_or("a duration such as 250ms")?;
                let d = parse_duration(v).map_err(|e| format!("{shown}: {e}"))?;
                if d > limits.max_delay {
                    return Err(format!(
                        "{shown}={v} is over this server's --http-max-delay of {}",
                        format_duration(limits.max_delay)
                    ));
                }
                self.delay = d;
            }
            "size" => {
                let v = value_or("a size such as 64KiB")?;
                let n = parse_size(v).map_err(|e| format!("{shown}: {e}"))?;
                if n > limits.max_size {
                    return Err(format!(
                        "{shown}={v} is over this server's --http-max-size of {}",
                        crate::units::describe_size(limits.max_size)
                    ));
                }
                self.size = Some(n);
            }
            "close" => self.close = flag(value, shown)?,
            _ => self.echo_body = flag(value, shown)?,
        }
        Ok(())
    }
}

/// A yes-or-no knob: present without a value, or `1`, `true`, `yes`, `on`
/// is yes; `0`, `false`, `no`, `off` is no.
fn flag(value: Option<&str>, shown: &str) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(format!("{shown}={other}: use 1 or 0 (or true or false)")),
    }
}

/// Decodes `%XX` escapes and `+` (a space, in a query); a malformed
/// escape stays as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const LIMITS: Limits = Limits {
        max_delay: Duration::from_secs(10),
        max_size: 1 << 20,
    };

    fn parse(query: &str, headers: &[(&'static str, &str)]) -> Result<Knobs, String> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        Knobs::parse(Some(query), &map, LIMITS)
    }

    #[test]
    fn query_and_headers_turn_knobs() {
        let k = parse("status=503&delay=250ms&size=64KiB&close&x=1", &[]).unwrap();
        assert_eq!(k.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(k.delay, Duration::from_millis(250));
        assert_eq!(k.size, Some(65536));
        assert!(k.close && !k.echo_body);
        let k = parse("", &[("x-echo-status", "418"), ("x-echo-body", "1")]).unwrap();
        assert_eq!(k.status, Some(StatusCode::IM_A_TEAPOT));
        assert!(k.echo_body);
        // The query wins over the header.
        let k = parse("status=201", &[("x-echo-status", "418")]).unwrap();
        assert_eq!(k.status, Some(StatusCode::CREATED));
        assert_eq!(
            parse("close=0&echo_body=false", &[]).unwrap(),
            Knobs::default()
        );
        assert_eq!(
            parse("delay=1%30ms", &[]).unwrap().delay,
            Duration::from_millis(10)
        );
    }

    #[test]
    fn out_of_range_and_malformed_knobs_say_why() {
        for (query, headers, needle) in [
            ("status=99", &[][..], "200 to 599"),
            ("status=600", &[], "200 to 599"),
            ("status", &[], "needs a value"),
            ("delay=11s", &[], "--http-max-delay of 10s"),
            ("delay=soon", &[], "invalid duration"),
            ("size=2MiB", &[], "--http-max-size of 1MiB"),
            ("close=maybe", &[], "use 1 or 0"),
            ("size=1&echo_body", &[], "cannot go together"),
            (
                "",
                &[("x-echo-staus", "503")],
                "unknown knob header x-echo-staus",
            ),
        ] {
            let e = parse(query, headers).unwrap_err();
            assert!(e.contains(needle), "{query:?}: {e}");
        }
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
