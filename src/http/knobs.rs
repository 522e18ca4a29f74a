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
//! | `header=Name:Value` | `x-echo-header: Name: Value` | add this response header; repeatable, from both places, at most [`MAX_HEADER_KNOBS`] and [`MAX_HEADER_KNOB_BYTES`] in all |
//! | `sse=10` | `x-echo-sse: 10` | stream this many [server-sent events](super::sse) (at most [`MAX_SSE_EVENTS`]) |
//! | `interval=100ms` | `x-echo-interval: 100ms` | the time between events (default [`DEFAULT_SSE_INTERVAL`], at most `--http-max-delay`) |
//!
//! A knob out of range or malformed, or an `x-echo-*` header that is no
//! knob, is a 400 that says which and why. Other query parameters are
//! the client's own and are only reflected.
//!
//! The server's default knobs (`--http-default-knobs`, in the same query
//! syntax) apply to every request that does not turn that knob itself:
//! a request's own knob wins, `header` counts as one knob (a request's
//! own `header=`, even an empty one, replaces every default header), and
//! the body knobs (`size`, `echo_body`, `sse`) count as one too (a
//! request that picks its body drops the default's body).

use std::time::Duration;

use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};

use crate::units::{describe_size, format_duration, parse_duration, parse_size};

/// The most response headers one request may add with `header=` knobs
/// (and the server's default knobs as many: they never add up).
pub const MAX_HEADER_KNOBS: usize = 16;
/// The most bytes of names and values one request may add with
/// `header=` knobs, all of them together: 4 KiB.
pub const MAX_HEADER_KNOB_BYTES: usize = 4 << 10;
/// The most server-sent events one `sse=` request may ask for.
pub const MAX_SSE_EVENTS: u32 = 10_000;
/// The time between server-sent events when a request gives no
/// `interval=`: 1 s.
pub const DEFAULT_SSE_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Response headers to add, in order (a name may repeat).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Answer with this many server-sent events.
    pub sse: Option<u32>,
    /// The time between events; `None` for [`DEFAULT_SSE_INTERVAL`].
    pub interval: Option<Duration>,
    /// Which knobs were turned (bit `i` for `KNOBS[i]`), for the defaults.
    given: u16,
}

/// The bounds the server puts on knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest `delay` (and `interval`).
    pub max_delay: Duration,
    /// The largest `size`, in bytes.
    pub max_size: u64,
}

/// The header prefix of knobs.
const HEADER_PREFIX: &str = "x-echo-";

/// Every knob: its query name and its header name.
const KNOBS: [(&str, &str); 8] = [
    ("status", "x-echo-status"),
    ("delay", "x-echo-delay"),
    ("size", "x-echo-size"),
    ("close", "x-echo-close"),
    ("echo_body", "x-echo-body"),
    ("header", "x-echo-header"),
    ("sse", "x-echo-sse"),
    ("interval", "x-echo-interval"),
];

/// The bit of knob `name` in [`Knobs::given`]: its place in [`KNOBS`].
fn bit(name: &str) -> u16 {
    KNOBS
        .iter()
        .position(|(q, _)| *q == name)
        .map_or(0, |i| 1 << i)
}

/// The knobs that choose the body: one of them given by a request drops
/// all of the defaults'.
const BODY_KNOBS: [&str; 3] = ["size", "echo_body", "sse"];

/// Response headers the server owns: they frame the message or the
/// connection (RFC 9110 §7.6.1, RFC 9113 §8.2.2), or name the backend.
const OWNED_HEADERS: [(&str, &str); 11] = [
    ("content-length", "it frames the response"),
    ("transfer-encoding", "it frames the response"),
    ("trailer", "it frames the response"),
    ("connection", "it belongs to the connection"),
    ("keep-alive", "it belongs to the connection"),
    ("proxy-connection", "it belongs to the connection"),
    ("upgrade", "it belongs to the connection"),
    ("te", "it belongs to the connection"),
    ("host", "it names the request's target, not a response's"),
    ("x-echo-server", "it names the backend that answered"),
    ("x-echo-shard", "it names the backend that answered"),
];

impl Knobs {
    /// Reads the knobs of a request from its query and headers, within
    /// `limits`, then takes from `defaults` each knob the request leaves
    /// alone; the error says what is wrong, for a 400.
    pub fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        limits: Limits,
        defaults: &Knobs,
    ) -> Result<Knobs, String> {
        let own = Knobs::read(query, headers, limits)?;
        let knobs = own.or(defaults);
        if own.given & bit("interval") != 0 && knobs.sse.is_none() {
            return Err("interval is the time between server-sent events: it needs sse=N".into());
        }
        Ok(knobs)
    }

    /// Reads the server's default knobs, a query string such as
    /// `status=503&delay=100ms` (a leading `?` is allowed), within
    /// `limits`: what [`HttpConfig::default_knobs`](super::HttpConfig::default_knobs)
    /// is checked with.
    pub fn parse_defaults(query: &str, limits: Limits) -> Result<Knobs, String> {
        Knobs::read(
            Some(query.strip_prefix('?').unwrap_or(query)),
            &HeaderMap::new(),
            limits,
        )
    }

    /// The knobs of one query and header set, nothing taken from defaults.
    fn read(query: Option<&str>, headers: &HeaderMap, limits: Limits) -> Result<Knobs, String> {
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
        // The query's knobs after the headers': for one-value knobs, the
        // query wins.
        let mut query_headers = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            if let Some((knob, _)) = KNOBS.iter().find(|(q, _)| *q == key) {
                let value = value.map(percent_decode);
                if *knob == "header" {
                    query_headers.push(value);
                    continue;
                }
                knobs.set(knob, value.as_deref(), limits, key)?;
            }
        }
        for value in query_headers {
            knobs.set("header", value.as_deref(), limits, "header")?;
        }
        let asked = |k: &&str| match *k {
            "size" => knobs.size.is_some(),
            "echo_body" => knobs.echo_body,
            _ => knobs.sse.is_some(),
        };
        if BODY_KNOBS.into_iter().filter(asked).count() > 1 {
            let bodies: Vec<&str> = BODY_KNOBS.into_iter().filter(asked).collect();
            return Err(format!(
                "{} cannot go together: pick one body",
                bodies.join(" and ")
            ));
        }
        if knobs.headers.len() > MAX_HEADER_KNOBS {
            return Err(format!(
                "header: {} headers asked for, and a request may add at most {MAX_HEADER_KNOBS}",
                knobs.headers.len()
            ));
        }
        let bytes: usize = knobs
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        if bytes > MAX_HEADER_KNOB_BYTES {
            return Err(format!(
                "header: {bytes} bytes of names and values asked for, and a request may add \
                 at most {} in all",
                describe_size(MAX_HEADER_KNOB_BYTES as u64)
            ));
        }
        Ok(knobs)
    }

    /// These knobs, with each knob they leave alone taken from `defaults`.
    fn or(&self, defaults: &Knobs) -> Knobs {
        let mut k = self.clone();
        let own = |name: &str| self.given & bit(name) != 0;
        if !own("status") {
            k.status = defaults.status;
        }
        if !own("delay") {
            k.delay = defaults.delay;
        }
        if !own("close") {
            k.close = defaults.close;
        }
        if !own("header") {
            k.headers.clone_from(&defaults.headers);
        }
        if !own("interval") {
            k.interval = defaults.interval;
        }
        if !BODY_KNOBS.into_iter().any(own) {
            k.size = defaults.size;
            k.echo_body = defaults.echo_body;
            k.sse = defaults.sse;
        }
        k
    }

    /// The time between server-sent events.
    pub fn interval(&self) -> Duration {
        self.interval.unwrap_or(DEFAULT_SSE_INTERVAL)
    }

    fn set(
        &mut self,
        knob: &str,
        value: Option<&str>,
        limits: Limits,
        shown: &str,
    ) -> Result<(), String> {
        self.given |= bit(knob);
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
            "delay" | "interval" => {
                let v = value_or("a duration such as 250ms")?;
                let d = parse_duration(v).map_err(|e| format!("{shown}: {e}"))?;
                if d > limits.max_delay {
                    return Err(format!(
                        "{shown}={v} is over this server's --http-max-delay of {}",
                        format_duration(limits.max_delay)
                    ));
                }
                if knob == "delay" {
                    self.delay = d;
                } else if d.is_zero() {
                    return Err(format!("{shown}=0: the time between events must not be 0"));
                } else {
                    self.interval = Some(d);
                }
            }
            "size" => {
                let v = value_or("a size such as 64KiB")?;
                let n = parse_size(v).map_err(|e| format!("{shown}: {e}"))?;
                if n > limits.max_size {
                    return Err(format!(
                        "{shown}={v} is over this server's --http-max-size of {}",
                        describe_size(limits.max_size)
                    ));
                }
                self.size = Some(n);
            }
            "sse" => {
                let v = value_or("a number of events, 1 to 10000")?;
                let n = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SSE_EVENTS).contains(n))
                    .ok_or_else(|| {
                        format!("{shown}={v}: a number of events is 1 to {MAX_SSE_EVENTS}")
                    })?;
                self.sse = Some(n);
            }
            "header" => {
                // Given with no value, or empty: no header (and none of
                // the defaults').
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    self.headers.push(response_header(v, shown)?);
                }
            }
            "close" => self.close = flag(value, shown)?,
            _ => self.echo_body = flag(value, shown)?,
        }
        Ok(())
    }
}

/// A `header=Name:Value` knob's header: a valid name the server does not
/// own, and a valid value (surrounding blanks dropped).
fn response_header(v: &str, shown: &str) -> Result<(HeaderName, HeaderValue), String> {
    if v.starts_with(':') {
        return Err(format!(
            "{shown}={v}: :{} is a pseudo-header, which only HTTP/2 and HTTP/3 framing sets",
            v.split(':').nth(1).unwrap_or_default().trim()
        ));
    }
    let Some((name, value)) = v.split_once(':') else {
        return Err(format!("{shown}={v}: a header is Name:Value"));
    };
    let name = name.trim();
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!("{shown}: {name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)")
    })?;
    if let Some((_, why)) = OWNED_HEADERS.iter().find(|(n, _)| *n == header.as_str()) {
        return Err(format!(
            "{shown}: {name} is a header the server sets itself: {why}"
        ));
    }
    let value = value.trim();
    let value = HeaderValue::from_str(value).map_err(|_| {
        format!("{shown}: the value of {name} is not a header value (no control characters)")
    })?;
    Ok((header, value))
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
fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '+']) {
        // Most values (`size=16`): nothing to decode, nothing to allocate.
        return std::borrow::Cow::Borrowed(s);
    }
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
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
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
        Knobs::parse(Some(query), &map, LIMITS, &Knobs::default())
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
        let k = parse("close=0&echo_body=false", &[]).unwrap();
        assert!(!k.close && !k.echo_body);
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
            (
                "size=1&echo_body",
                &[],
                "size and echo_body cannot go together",
            ),
            (
                "sse=2&echo_body",
                &[],
                "echo_body and sse cannot go together",
            ),
            ("sse=0", &[], "1 to 10000"),
            ("sse=10001", &[], "1 to 10000"),
            ("sse=2&interval=11s", &[], "--http-max-delay of 10s"),
            ("sse=2&interval=0", &[], "must not be 0"),
            ("interval=1s", &[], "it needs sse=N"),
            ("header=X-A", &[], "header=X-A: a header is Name:Value"),
            (
                "header=Content-Length:5",
                &[],
                "Content-Length is a header the server sets itself",
            ),
            (
                "header=connection:close",
                &[],
                "connection is a header the server sets",
            ),
            (
                "",
                &[("x-echo-header", "Transfer-Encoding: gzip")],
                "x-echo-header: Transfer-Encoding is",
            ),
            ("header=:status:200", &[], ":status is a pseudo-header"),
            ("header=X%20A:1", &[], "\"X A\" is not a header name"),
            (
                "header=X-A:a%0db",
                &[],
                "the value of X-A is not a header value",
            ),
            ("header=X-Echo-Server:me", &[], "names the backend"),
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
    fn header_knobs_add_up_within_their_bounds() {
        let k = parse(
            "header=X-A:1&header=Cache-Control:%20no-store&header=X-A:2",
            &[("x-echo-header", "X-From-Header: yes")],
        )
        .unwrap();
        let got: Vec<(&str, &str)> = k
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("x-from-header", "yes"),
                ("x-a", "1"),
                ("cache-control", "no-store"),
                ("x-a", "2")
            ]
        );
        let sixteen: Vec<String> = (0..16).map(|i| format!("header=X-{i}:v")).collect();
        assert_eq!(parse(&sixteen.join("&"), &[]).unwrap().headers.len(), 16);
        let e = parse(&format!("{}&header=X-16:v", sixteen.join("&")), &[]).unwrap_err();
        assert!(
            e.contains("17 headers asked for") && e.contains("at most 16"),
            "{e}"
        );
        let big = format!("header=X-Big:{}", "v".repeat(4096));
        let e = parse(&big, &[]).unwrap_err();
        assert!(e.contains("at most 4KiB in all"), "{e}");
        let fits = format!("header=X-Big:{}", "v".repeat(4096 - 5));
        assert_eq!(parse(&fits, &[]).unwrap().headers.len(), 1);
    }

    #[test]
    fn a_requests_own_knob_wins_over_the_defaults() {
        let defaults = Knobs::parse_defaults(
            "?status=503&delay=100ms&header=X-Default:1&sse=3&interval=10ms",
            LIMITS,
        )
        .unwrap();
        let with =
            |query: &str| Knobs::parse(Some(query), &HeaderMap::new(), LIMITS, &defaults).unwrap();
        let k = with("");
        assert_eq!(k.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(k.delay, Duration::from_millis(100));
        assert_eq!(k.sse, Some(3));
        assert_eq!(k.interval(), Duration::from_millis(10));
        assert_eq!(k.headers.len(), 1);
        let k = with("status=200&delay=0&header=&size=5");
        assert_eq!(k.status, Some(StatusCode::OK));
        assert_eq!(k.delay, Duration::ZERO);
        assert!(k.headers.is_empty(), "an empty header= drops the defaults'");
        assert_eq!((k.size, k.sse), (Some(5), None), "one body: the request's");
        // An interval alone goes with the defaults' sse.
        assert_eq!(with("interval=20ms").interval(), Duration::from_millis(20));
        assert_eq!(
            Knobs::parse(Some(""), &HeaderMap::new(), LIMITS, &Knobs::default())
                .unwrap()
                .interval(),
            DEFAULT_SSE_INTERVAL
        );
        for (bad, needle) in [
            ("delay=11s", "--http-max-delay of 10s"),
            ("status=42", "200 to 599"),
            ("size=1&sse=2", "size and sse cannot go together"),
        ] {
            let e = Knobs::parse_defaults(bad, LIMITS).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        // A default interval with no sse is one for requests that ask for events.
        assert!(Knobs::parse_defaults("interval=2s", LIMITS).is_ok());
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
