//! An HTTP/1.1 response, read as it arrives: the head through `httparse`
//! (hyper's own parser), then the body as its framing says (a
//! `Content-Length`, chunked, or until the server closes), handed on
//! piece by piece and never kept. No I/O here: [`ResponseReader::feed`]
//! takes whatever bytes came and says how many it used, so the exchange
//! loop ([`h1`](super::h1)) reads straight into the slot's buffer and the
//! parser is tested on byte strings.
//!
//! Memory is bounded whatever a server sends: the head must fit the
//! caller's buffer (the reader holds no bytes of its own), a chunk-size
//! line or the trailers past [`MAX_LINE`] and [`MAX_TRAILERS`] are an
//! error, and a body is only counted.

use super::exchange::Failure;
use super::record::FailureKind;

/// The most headers a response head may have.
pub(crate) const MAX_HEADERS: usize = 64;

/// The longest chunk-size line (with its extensions) a chunked body may
/// have.
pub(crate) const MAX_LINE: usize = 4096;

/// The most bytes of trailers after a chunked body's last chunk.
pub(crate) const MAX_TRAILERS: usize = 16 * 1024;

/// What a response's head said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    /// The server closes the connection after this response
    /// (`Connection: close`, HTTP/1.0, or a body delimited by the close).
    pub close: bool,
}

/// What takes each piece of a body, with the head it came under: it may
/// refuse the piece, which fails the response.
pub(crate) type OnPiece<'a> = dyn FnMut(Head, &[u8]) -> Result<(), Failure> + 'a;

/// Where [`ResponseReader::feed`] got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More bytes are needed; all that was given is used, but for a head
    /// not yet whole, which must be given again with what follows.
    More,
    /// The response is whole.
    Done,
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// This many bytes still to come.
    Length(u64),
    /// Chunked, in this state.
    Chunked(Chunk),
    /// Everything until the server closes.
    UntilClose,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line: the size so far, whether its digits have
    /// ended (an extension or white space follows), the line's length.
    Size {
        size: u64,
        digits: bool,
        ended: bool,
        len: usize,
    },
    /// The line's CR was read: its LF is next.
    SizeLf { size: u64 },
    /// This many bytes of chunk data still to come.
    Data(u64),
    /// The CR after a chunk's data is next.
    DataCr,
    /// The LF after a chunk's data is next.
    DataLf,
    /// In the trailers: the bytes of them so far, and the length of the
    /// line being read (0: at the start of a line).
    Trailers { total: usize, line: usize, cr: bool },
}

/// Where the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(Head, Body),
    Done(Head),
}

/// One response being read; [`ResponseReader::reset`] readies it for the
/// next.
#[derive(Debug)]
pub(crate) struct ResponseReader {
    state: State,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader { state: State::Head }
    }
}

/// A response that is not HTTP as it should be.
fn malformed(why: impl std::fmt::Display) -> Failure {
    Failure::new(
        FailureKind::Mismatch,
        format!("response mismatch: not an HTTP/1.1 response ({why})"),
    )
}

impl ResponseReader {
    /// Readies the reader for the next response.
    pub(crate) fn reset(&mut self) {
        self.state = State::Head;
    }

    /// The head, once it has been read.
    pub(crate) fn head(&self) -> Option<Head> {
        match self.state {
            State::Head => None,
            State::Body(head, _) | State::Done(head) => Some(head),
        }
    }

    /// Reads from `buf`: the head (once `buf` holds all of it; a head
    /// that fills `buf` is `full`, an error), then the body, each piece of
    /// which goes to `piece` with the head (and `piece` may refuse it). Returns how many bytes
    /// were used, and whether the response is whole. Bytes after the end
    /// of the response are not used.
    pub(crate) fn feed(
        &mut self,
        buf: &[u8],
        full: bool,
        piece: &mut OnPiece<'_>,
    ) -> Result<(usize, Progress), Failure> {
        let mut used = 0;
        loop {
            match self.state {
                State::Done(_) => return Ok((used, Progress::Done)),
                State::Head => match parse_head(&buf[used..])? {
                    None if full && used == 0 => {
                        return Err(malformed(format!(
                            "its head is longer than {} bytes",
                            buf.len()
                        )));
                    }
                    None => return Ok((used, Progress::More)),
                    // 1xx: an interim response; the real one follows.
                    Some((n, None)) => used += n,
                    Some((n, Some((head, body)))) => {
                        used += n;
                        self.state = match body {
                            None => State::Done(head),
                            Some(body) => State::Body(head, body),
                        };
                    }
                },
                State::Body(head, ref mut body) => {
                    if used == buf.len() {
                        return Ok((used, Progress::More));
                    }
                    let (n, done) = body_step(body, &buf[used..], &mut |data| piece(head, data))?;
                    used += n;
                    if done {
                        self.state = State::Done(head);
                    }
                }
            }
        }
    }

    /// The server closed the connection: whether that ends the response
    /// (a body delimited by the close), or leaves it short.
    pub(crate) fn closed(&mut self) -> bool {
        match self.state {
            State::Body(head, Body::UntilClose) => {
                self.state = State::Done(head);
                true
            }
            State::Done(_) => true,
            _ => false,
        }
    }
}

/// A head and what its body is (`None`: no body); `None` for an interim
/// (1xx) response.
type Parsed = Option<(Head, Option<Body>)>;

/// The head at the start of `buf`, if it is whole: its length, and what
/// it says.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Parsed)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let n = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(malformed(format!("more than {MAX_HEADERS} headers")));
        }
        Err(e) => return Err(malformed(e)),
    };
    let status = response.code.unwrap_or(0);
    if status == 101 {
        return Err(malformed(
            "101 Switching Protocols to a request that asked for none",
        ));
    }
    if (100..200).contains(&status) {
        return Ok(Some((n, None)));
    }
    let mut close = response.version == Some(0);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut coded = false;
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| malformed("a header not UTF-8"))?;
        if h.name.eq_ignore_ascii_case("content-length") {
            let v: u64 = value
                .trim()
                .parse()
                .map_err(|_| malformed(format!("Content-Length {value:?}")))?;
            if length.is_some_and(|l| l != v) {
                return Err(malformed("two Content-Lengths that differ"));
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
            // Chunked only counts as the last coding.
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && response.version == Some(0) {
                    close = false;
                }
            }
        }
    }
    let head = |close| Head { status, close };
    // RFC 9112 §6.3, in its order.
    let body = if status == 204 || status == 304 {
        None
    } else if coded && chunked {
        Some(Body::Chunked(Chunk::Size {
            size: 0,
            digits: false,
            ended: false,
            len: 0,
        }))
    } else if coded {
        return Ok(Some((n, Some((head(true), Some(Body::UntilClose))))));
    } else if let Some(len) = length {
        (len > 0).then_some(Body::Length(len))
    } else {
        return Ok(Some((n, Some((head(true), Some(Body::UntilClose))))));
    };
    Ok(Some((n, Some((head(close), body)))))
}

/// Reads body bytes from `buf` (not empty): how many were used, and
/// whether the body is whole.
fn body_step(
    body: &mut Body,
    buf: &[u8],
    piece: &mut dyn FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<(usize, bool), Failure> {
    match body {
        Body::Length(left) => {
            let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
            piece(&buf[..n])?;
            *left -= n as u64;
            Ok((n, *left == 0))
        }
        Body::UntilClose => {
            piece(buf)?;
            Ok((buf.len(), false))
        }
        Body::Chunked(chunk) => chunked_step(chunk, buf, piece),
    }
}

/// Reads a chunked body's bytes from `buf` (not empty), as [`body_step`].
fn chunked_step(
    chunk: &mut Chunk,
    buf: &[u8],
    piece: &mut dyn FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<(usize, bool), Failure> {
    let mut at = 0;
    while at < buf.len() {
        let b = buf[at];
        match chunk {
            Chunk::Data(left) => {
                let n = (buf.len() - at).min(usize::try_from(*left).unwrap_or(usize::MAX));
                piece(&buf[at..at + n])?;
                *left -= n as u64;
                at += n;
                if *left == 0 {
                    *chunk = Chunk::DataCr;
                }
                continue;
            }
            Chunk::Size {
                size,
                digits,
                ended,
                len,
            } => {
                *len += 1;
                if *len > MAX_LINE {
                    return Err(malformed(format!(
                        "a chunk-size line over {MAX_LINE} bytes"
                    )));
                }
                match b {
                    b'\r' if *digits => *chunk = Chunk::SizeLf { size: *size },
                    _ if *ended => {}
                    b';' | b' ' | b'\t' if *digits => *ended = true,
                    _ => {
                        let digit = (b as char)
                            .to_digit(16)
                            .ok_or_else(|| malformed(format!("{:?} in a chunk size", b as char)))?;
                        *size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(digit)))
                            .ok_or_else(|| malformed("a chunk size past 2^64"))?;
                        *digits = true;
                    }
                }
            }
            Chunk::SizeLf { size } => {
                if b != b'\n' {
                    return Err(malformed("a chunk-size line without its LF"));
                }
                *chunk = match *size {
                    0 => Chunk::Trailers {
                        total: 0,
                        line: 0,
                        cr: false,
                    },
                    size => Chunk::Data(size),
                };
            }
            Chunk::DataCr if b == b'\r' => *chunk = Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => {
                *chunk = Chunk::Size {
                    size: 0,
                    digits: false,
                    ended: false,
                    len: 0,
                }
            }
            Chunk::DataCr | Chunk::DataLf => {
                return Err(malformed("a chunk's data longer than its size"));
            }
            Chunk::Trailers { total, line, cr } => {
                *total += 1;
                if *total > MAX_TRAILERS {
                    return Err(malformed(format!("trailers over {MAX_TRAILERS} bytes")));
                }
                match (b, *cr) {
                    (b'\n', true) if *line == 0 => return Ok((at + 1, true)),
                    (b'\n', true) => (*line, *cr) = (0, false),
                    (b'\r', false) => *cr = true,
                    (_, true) => return Err(malformed("a CR without its LF in the trailers")),
                    _ => *line += 1,
                }
            }
        }
        at += 1;
    }
    Ok((at, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` one after the other, as reads would bring them (a
    /// head left unused is given again with the next part); the body and
    /// the head, or the failure.
    fn read(parts: &[&[u8]]) -> Result<(Vec<u8>, Option<Head>, Progress), Failure> {
        let mut r = ResponseReader::default();
        let mut body = Vec::new();
        let mut pending = Vec::new();
        let mut progress = Progress::More;
        for part in parts {
            pending.extend_from_slice(part);
            let (used, p) = r.feed(&pending, false, &mut |_, b| {
                body.extend_from_slice(b);
                Ok(())
            })?;
            pending.drain(..used);
            progress = p;
        }
        Ok((body, r.head(), progress))
    }

    #[test]
    fn a_content_length_body_in_any_split() {
        let whole = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        for cut in 1..whole.len() {
            let (body, head, p) = read(&[&whole[..cut], &whole[cut..]]).unwrap();
            assert_eq!(
                (body.as_slice(), p),
                (&b"hello"[..], Progress::Done),
                "cut {cut}"
            );
            assert_eq!(
                head,
                Some(Head {
                    status: 200,
                    close: false
                })
            );
        }
    }

    #[test]
    fn a_chunked_body_with_extensions_and_trailers_in_any_split() {
        let whole = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      3;x=y\r\nabc\r\n1a \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-t: 1\r\n\r\n";
        for cut in 1..whole.len() {
            let (body, _, p) = read(&[&whole[..cut], &whole[cut..]]).unwrap();
            assert_eq!(body, b"abcabcdefghijklmnopqrstuvwxyz", "cut {cut}");
            assert_eq!(p, Progress::Done);
        }
    }

    #[test]
    fn bytes_after_the_response_are_left_unused() {
        let mut r = ResponseReader::default();
        let buf = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1";
        let (used, p) = r.feed(buf, false, &mut |_, _| Ok(())).unwrap();
        assert_eq!((used, p), (27, Progress::Done));
    }

    #[test]
    fn interim_responses_are_skipped() {
        let (body, head, p) = read(&[
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
        ])
        .unwrap();
        assert_eq!((body.as_slice(), p), (&b"x"[..], Progress::Done));
        assert_eq!(head.unwrap().status, 201);
    }

    #[test]
    fn close_is_read_from_the_head_or_the_framing() {
        let close = |head: &[u8]| read(&[head]).unwrap().1.unwrap().close;
        assert!(close(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(close(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!close(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!close(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        let mut r = ResponseReader::default();
        let (_, p) = r
            .feed(b"HTTP/1.1 200 OK\r\n\r\nab", false, &mut |_, _| Ok(()))
            .unwrap();
        assert_eq!(p, Progress::More);
        assert!(r.head().unwrap().close);
        assert!(r.closed(), "a body without a length ends with the close");
        let mut r = ResponseReader::default();
        r.feed(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nab",
            false,
            &mut |_, _| Ok(()),
        )
        .unwrap();
        assert!(!r.closed(), "a body with a length is short at the close");
    }

    #[test]
    fn what_is_not_http_fails_in_one_line() {
        let fails = |parts: &[&[u8]], what: &str| {
            let e = read(parts).unwrap_err();
            assert_eq!(e.kind, FailureKind::Mismatch);
            assert!(e.detail.contains(what), "{what}: {}", e.detail);
            assert!(!e.detail.contains('\n'));
        };
        fails(&[b"SSH-2.0-OpenSSH\r\n\r\n"], "not an HTTP/1.1 response");
        fails(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"],
            "Content-Length \"x\"",
        );
        fails(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
            "two Content-Lengths",
        );
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        fails(&[chunked, b"zz\r\n"], "in a chunk size");
        fails(&[chunked, b"2\r\nabc"], "longer than its size");
        fails(&[chunked, b"ffffffffffffffffff\r\n"], "past 2^64");
        fails(
            &[chunked, &[b'1'; 1], &[b';'; MAX_LINE]],
            "chunk-size line over",
        );
        fails(
            &[chunked, b"0\r\n", &[b'x'; MAX_TRAILERS + 1]],
            "trailers over",
        );
        fails(&[b"HTTP/1.1 101 Switching Protocols\r\n\r\n"], "101");
        let many: Vec<u8> = (0..=MAX_HEADERS)
            .flat_map(|i| format!("x-{i}: 1\r\n").into_bytes())
            .collect();
        fails(
            &[b"HTTP/1.1 200 OK\r\n", &many, b"\r\n"],
            "more than 64 headers",
        );
    }

    #[test]
    fn a_head_that_fills_the_buffer_is_an_error() {
        let mut r = ResponseReader::default();
        let buf = b"HTTP/1.1 200 OK\r\nx: yyyyyyyy";
        assert_eq!(
            r.feed(buf, false, &mut |_, _| Ok(())).unwrap(),
            (0, Progress::More)
        );
        let e = r.feed(buf, true, &mut |_, _| Ok(())).unwrap_err();
        assert!(e.detail.contains("head is longer than"), "{}", e.detail);
    }

    #[test]
    fn a_piece_refused_fails_the_response() {
        let mut r = ResponseReader::default();
        let e = r
            .feed(
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nab",
                false,
                &mut |_, _| Err(Failure::new(FailureKind::Mismatch, "no")),
            )
            .unwrap_err();
        assert_eq!(e.detail, "no");
    }
}
