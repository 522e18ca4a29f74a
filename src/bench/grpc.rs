//! gRPC over the HTTP/2 exchange (`--grpc`): each message is one unary
//! `grpc.testing.TestService/UnaryCall`, which any gRPC interop server
//! answers (echoes, grpc-go's, grpcio's, ghz's test server).
//!
//! The request is a `SimpleRequest` asking for `size` bytes of payload
//! and carrying `size` bytes of the connection's pattern (so the request
//! moves as many bytes as over TCP), encoded by hand: the few bytes of
//! framing and tags come first ([`request_head`]), then the pattern
//! itself, generated as hyper asks for it, never held whole.
//!
//! The answer must be one uncompressed `SimpleResponse` whose payload is
//! exactly `size` zeros (what gRPC's interop descriptions say a server
//! sends), then trailers with `grpc-status: 0`. A status other than OK
//! (in the trailers, or in the headers of a Trailers-Only answer) is a
//! `status` error, and the connection goes on; a wrong byte a `mismatch`;
//! a payload shorter than asked a `short_echo`. What the answer may hold
//! is bounded, so a server that sends without end cannot grow the
//! bench's memory.

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::HeaderMap;
use prost::Message;

pub(crate) use super::config::GRPC_UNARY_CALL as UNARY_CALL;
use super::exchange::Failure;
use super::record::FailureKind;
use crate::grpc::generated::testing::SimpleResponse;

/// What an answer may carry beyond its payload (its own tags and
/// lengths, and fields such as `server_id`), before it is an error.
pub(crate) const SLACK: usize = 1024;

/// Appends `v` as a protobuf varint.
fn varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// The bytes of a varint.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The gRPC frame header and the protobuf tags of a `SimpleRequest` with
/// `response_size: size` and a payload of `size` bytes, up to the payload
/// bytes themselves, which follow it.
pub(crate) fn request_head(size: usize) -> Bytes {
    let n = size as u64;
    // Payload { body (2): size bytes }
    let payload = 1 + varint_len(n) + size;
    // SimpleRequest { response_size (2): size, payload (3): Payload }
    let message = 1 + varint_len(n) + 1 + varint_len(payload as u64) + payload;
    let mut head = BytesMut::with_capacity(5 + 16);
    head.put_u8(0); // not compressed
    head.put_u32(u32::try_from(message).unwrap_or(u32::MAX));
    head.put_u8(0x10);
    varint(&mut head, n);
    head.put_u8(0x1a);
    varint(&mut head, payload as u64);
    head.put_u8(0x12);
    varint(&mut head, n);
    head.freeze()
}

/// A call that ended with a status other than OK: `None` if it is OK.
pub(crate) fn status_failure(fields: &HeaderMap, method: &str) -> Option<Failure> {
    let code = fields.get("grpc-status")?.to_str().unwrap_or("?");
    if code == "0" {
        return None;
    }
    let message = fields
        .get("grpc-message")
        .map(|m| percent_decoded(m.as_bytes()))
        .unwrap_or_default();
    Some(Failure::new(
        FailureKind::Status,
        format!("gRPC status {code} for {method}: not OK ({message})"),
    ))
}

/// A `grpc-message` as its sender wrote it: gRPC percent-encodes it.
fn percent_decoded(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (raw[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks that an answer's payload is `size` zeros (`call` names the
/// method, for the error).
pub(crate) fn check_payload(body: &[u8], size: usize, call: &str) -> Result<(), Failure> {
    if let Some(at) = body.iter().take(size).position(|&b| b != 0) {
        return Err(mismatch(format!(
            "response mismatch at byte {at} of the payload: expected 0x00, got {:#04x}",
            body[at]
        )));
    }
    if body.len() < size {
        return Err(Failure::new(
            FailureKind::ShortEcho,
            format!(
                "short echo: the answer to {call} came with {} of its {size} payload bytes",
                body.len()
            ),
        ));
    }
    if body.len() > size {
        return Err(mismatch(format!(
            "response mismatch at byte {size} of the payload: longer than the {size} bytes asked for"
        )));
    }
    Ok(())
}

/// The gRPC frame header and the protobuf tags of a
/// `StreamingOutputCallRequest` asking for one answer of `size` bytes and
/// carrying a payload of `size` bytes, up to the payload bytes themselves.
pub(crate) fn duplex_request_head(size: usize) -> Bytes {
    let n = size as u64;
    // ResponseParameters { size (1): size }
    let params = 1 + varint_len(n);
    // Payload { body (2): size bytes }
    let payload = 1 + varint_len(n) + size;
    // { response_parameters (2): params, payload (3): payload }
    let message = 1 + varint_len(params as u64) + params + 1 + varint_len(payload as u64) + payload;
    let mut head = BytesMut::with_capacity(5 + 24);
    head.put_u8(0);
    head.put_u32(u32::try_from(message).unwrap_or(u32::MAX));
    head.put_u8(0x12);
    varint(&mut head, params as u64);
    head.put_u8(0x08);
    varint(&mut head, n);
    head.put_u8(0x1a);
    varint(&mut head, payload as u64);
    head.put_u8(0x12);
    varint(&mut head, n);
    head.freeze()
}

/// Takes the first whole gRPC message off `buf`, if one is there: its
/// bytes (the 5-byte header left out), or an error for a compressed one.
pub(crate) fn next_message(buf: &mut BytesMut, call: &str) -> Result<Option<Bytes>, Failure> {
    if buf.len() < 5 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(mismatch(format!(
            "an answer to {call} is compressed (flag {:#04x}); the bench asked for none",
            buf[0]
        )));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if buf.len() < 5 + len {
        return Ok(None);
    }
    let mut message = buf.split_to(5 + len);
    Ok(Some(message.split_off(5).freeze()))
}

/// A `mismatch`.
pub(crate) fn mismatch(detail: String) -> Failure {
    Failure::new(FailureKind::Mismatch, detail)
}

/// Checks that `framed` is one uncompressed `SimpleResponse` whose
/// payload is `size` zeros; returns its length.
pub(crate) fn check_message(framed: &[u8], size: usize) -> Result<usize, Failure> {
    let Some((head, message)) = framed.split_at_checked(5) else {
        return Err(Failure::new(
            FailureKind::ShortEcho,
            format!("short echo: the answer to {UNARY_CALL} has no message"),
        ));
    };
    if head[0] != 0 {
        return Err(mismatch(format!(
            "the answer to {UNARY_CALL} is compressed (flag {:#04x}); the bench asked for none",
            head[0]
        )));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len != message.len() {
        return Err(mismatch(format!(
            "the answer to {UNARY_CALL} frames {len} bytes and brought {} (one message only)",
            message.len()
        )));
    }
    let answer = SimpleResponse::decode(message).map_err(|e| {
        mismatch(format!(
            "the answer to {UNARY_CALL} is not a SimpleResponse: {e}"
        ))
    })?;
    check_payload(
        &answer.payload.map(|p| p.body).unwrap_or_default(),
        size,
        UNARY_CALL,
    )?;
    Ok(framed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::generated::testing::{Payload, SimpleRequest};

    /// The hand-made head, followed by the payload, is the message prost
    /// makes, for sizes around each varint length (at 0, prost leaves out
    /// the empty fields, which we send: it decodes the same).
    #[test]
    fn the_request_is_what_prost_encodes() {
        for size in [0, 1, 127, 128, 16_383, 16_384, 70_000] {
            let body: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let mut ours = request_head(size).to_vec();
            ours.extend_from_slice(&body);
            let want = SimpleRequest {
                response_size: size as i32,
                payload: Some(Payload {
                    r#type: 0,
                    body: body.into(),
                }),
                ..Default::default()
            };
            assert_eq!(
                SimpleRequest::decode(&ours[5..]).unwrap(),
                want,
                "size {size}"
            );
            if size > 0 {
                assert_eq!(&ours[5..], &want.encode_to_vec()[..], "size {size}");
            }
            assert_eq!(ours[0], 0);
            let framed = u32::from_be_bytes(ours[1..5].try_into().unwrap()) as usize;
            assert_eq!(framed, ours.len() - 5);
        }
    }

    /// The duplex head and payload make the message prost makes, and
    /// answers are taken off a buffer one whole message at a time.
    #[test]
    fn duplex_messages_are_what_prost_encodes_and_split_whole() {
        use crate::grpc::generated::testing::{ResponseParameters, StreamingOutputCallRequest};
        for size in [1, 127, 128, 70_000] {
            let body: Vec<u8> = (0..size).map(|i| (i * 3) as u8).collect();
            let mut ours = duplex_request_head(size).to_vec();
            ours.extend_from_slice(&body);
            let want = StreamingOutputCallRequest {
                response_parameters: vec![ResponseParameters {
                    size: size as i32,
                    ..Default::default()
                }],
                payload: Some(Payload {
                    r#type: 0,
                    body: body.into(),
                }),
                ..Default::default()
            };
            assert_eq!(&ours[5..], &want.encode_to_vec()[..], "size {size}");
            let framed = u32::from_be_bytes(ours[1..5].try_into().unwrap()) as usize;
            assert_eq!(framed, ours.len() - 5);
        }
        let one = framed(&[0; 10]);
        let mut buf = BytesMut::from(&[one.clone(), one[..7].to_vec()].concat()[..]);
        assert_eq!(next_message(&mut buf, "x").unwrap().unwrap(), one[5..]);
        assert_eq!(
            next_message(&mut buf, "x").unwrap(),
            None,
            "a part is not a message"
        );
        buf.extend_from_slice(&one[7..]);
        assert_eq!(next_message(&mut buf, "x").unwrap().unwrap(), one[5..]);
        assert!(buf.is_empty());
        let mut compressed = BytesMut::from(&[1u8, 0, 0, 0, 0][..]);
        assert_eq!(
            next_message(&mut compressed, "x").unwrap_err().kind,
            FailureKind::Mismatch
        );
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let m = SimpleResponse {
            payload: Some(Payload {
                r#type: 0,
                body: Bytes::copy_from_slice(payload),
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let mut out = vec![0];
        out.extend((m.len() as u32).to_be_bytes());
        out.extend(m);
        out
    }

    #[test]
    fn answers_are_checked_byte_for_byte() {
        let good = framed(&[0; 100]);
        assert_eq!(check_message(&good, 100).unwrap(), good.len());
        let mut flipped = vec![0u8; 100];
        flipped[42] = 1;
        let e = check_message(&framed(&flipped), 100).unwrap_err();
        assert_eq!(e.kind, FailureKind::Mismatch);
        assert!(e.detail.contains("byte 42 of the payload"), "{}", e.detail);
        let e = check_message(&framed(&[0; 99]), 100).unwrap_err();
        assert_eq!(e.kind, FailureKind::ShortEcho, "{}", e.detail);
        let e = check_message(&framed(&[0; 101]), 100).unwrap_err();
        assert_eq!(e.kind, FailureKind::Mismatch, "{}", e.detail);
        let mut compressed = good.clone();
        compressed[0] = 1;
        assert_eq!(
            check_message(&compressed, 100).unwrap_err().kind,
            FailureKind::Mismatch
        );
        let twice = [good.clone(), good].concat();
        assert_eq!(
            check_message(&twice, 100).unwrap_err().kind,
            FailureKind::Mismatch
        );
        assert_eq!(
            check_message(b"\0\0", 100).unwrap_err().kind,
            FailureKind::ShortEcho
        );
    }

    #[test]
    fn a_status_other_than_ok_is_a_status_error() {
        let mut h = HeaderMap::new();
        assert!(status_failure(&h, UNARY_CALL).is_none());
        h.insert("grpc-status", "0".parse().unwrap());
        assert!(status_failure(&h, UNARY_CALL).is_none());
        h.insert("grpc-status", "14".parse().unwrap());
        h.insert("grpc-message", "draining%20now%2e%ZZ%".parse().unwrap());
        let f = status_failure(&h, UNARY_CALL).unwrap();
        assert_eq!(f.kind, FailureKind::Status);
        assert!(f.detail.contains("gRPC status 14"), "{}", f.detail);
        assert!(f.detail.contains("(draining now.%ZZ%)"), "{}", f.detail);
    }
}
