//! What the body of an HTTP response must be, for each request kind
//! ([`HttpRequestKind`]), checked piece by piece as it arrives: the same
//! checks whether hyper (HTTP/2) or the bench's own HTTP/1.1 client
//! ([`h1`](super::h1)) read the response.

use super::config::HttpRequestKind;
use super::exchange::Failure;
use super::http_connect::Target;
use super::pattern::Pattern;
use super::record::FailureKind;

/// The longest reflection (`reflect` requests) the bench reads: a longer
/// body is an error, not memory.
pub(crate) const MAX_REFLECTION: usize = 1 << 20;

/// What a response's body must be.
pub(crate) struct Check {
    pub kind: HttpRequestKind,
    /// `echo`: the connection's pattern, and where this message starts in it.
    pub pattern: Pattern,
    pub offset: u64,
    /// Bytes asked for (`echo`, `size`).
    pub size: usize,
}

impl Check {
    /// Checks the piece `data` of the body, at offset `at` of it.
    pub(crate) fn piece(&self, at: usize, data: &[u8], kept: &mut Vec<u8>) -> Result<(), Failure> {
        let longer = |limit: usize, what: &str| {
            Failure::new(
                FailureKind::Mismatch,
                format!("response mismatch at byte {limit} of the body: longer than the {what}"),
            )
        };
        match self.kind {
            HttpRequestKind::Reflect => {
                if at + data.len() > MAX_REFLECTION {
                    return Err(longer(MAX_REFLECTION, "1 MiB a reflection may be"));
                }
                kept.extend_from_slice(data);
            }
            HttpRequestKind::Echo => {
                let take = data.len().min(self.size.saturating_sub(at));
                let offset = self.offset + at as u64;
                if let Err(m) = self.pattern.check(offset, &data[..take]) {
                    return Err(Failure::new(
                        FailureKind::Mismatch,
                        format!(
                            "echo mismatch at byte {} of the connection: sent {:#04x}, got {:#04x}",
                            m.offset, m.expected, m.got
                        ),
                    ));
                }
                if take < data.len() {
                    return Err(longer(self.size, &format!("{} bytes sent", self.size)));
                }
            }
            // Checked whole, by `read_grpc_answer` (and `grpc_duplex`).
            HttpRequestKind::Grpc | HttpRequestKind::GrpcDuplex => {}
            HttpRequestKind::Size => {
                let take = data.len().min(self.size.saturating_sub(at));
                if let Some(bad) = crate::http::first_mismatch(at as u64, &data[..take]) {
                    let got = data[(bad - at as u64) as usize];
                    return Err(Failure::new(
                        FailureKind::Mismatch,
                        format!(
                            "response mismatch at byte {bad} of the size= pattern: \
                             expected {:#04x}, got {got:#04x}",
                            crate::http::byte_at(bad)
                        ),
                    ));
                }
                if take < data.len() {
                    return Err(longer(self.size, &format!("{} bytes asked for", self.size)));
                }
            }
        }
        Ok(())
    }

    /// Checks the whole body, of `len` bytes (`kept`: a reflection's).
    pub(crate) fn end(&self, len: usize, kept: &[u8], target: &Target) -> Result<(), Failure> {
        if self.kind == HttpRequestKind::Reflect {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(kept) {
                Ok(_) => Ok(()),
                Err(e) => Err(Failure::new(
                    FailureKind::Mismatch,
                    format!(
                        "response mismatch: the body of {} is not JSON ({e})",
                        target.describe()
                    ),
                )),
            };
        }
        if len < self.size {
            return Err(Failure::new(
                FailureKind::ShortEcho,
                format!(
                    "short echo: the response to {} came with {len} of its {} bytes",
                    target.describe(),
                    self.size
                ),
            ));
        }
        Ok(())
    }
}
