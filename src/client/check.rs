//! The check of the echo as it arrives ([`Checker`]), and what a
//! conversation that passed it moved ([`Summary`]).

use super::error::ClientError;

/// What a successful conversation moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Bytes sent, and received back identical.
    pub bytes: u64,
}

/// Compares the echo, as it arrives, with what was sent.
pub(super) struct Checker {
    /// Bytes received so far, all of them right.
    pub(super) received: u64,
}

impl Checker {
    /// A checker that has seen nothing yet.
    pub(super) fn new() -> Checker {
        Checker { received: 0 }
    }

    /// Checks `got` against `want`, the bytes sent from this offset on
    /// that are still owed: a wrong byte is a mismatch there, bytes past
    /// `want` (`sent` bytes in all) are extra. Counts `got` either way.
    pub(super) fn check(&mut self, got: &[u8], want: &[u8], sent: u64) -> Result<(), ClientError> {
        let at = self.received;
        self.received += got.len() as u64;
        if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
            return Err(ClientError::Mismatch {
                offset: at + i as u64,
                expected: want[i],
                got: got[i],
                received: self.received,
            });
        }
        if got.len() > want.len() {
            return Err(ClientError::Extra {
                sent,
                received: self.received,
            });
        }
        Ok(())
    }

    /// Checks the echo of one whole message (a datagram, a WebSocket
    /// message), which must be exactly `want`: a wrong byte is a mismatch
    /// there, a longer echo is extra, a shorter one short.
    pub(super) fn check_whole(
        &mut self,
        got: &[u8],
        want: &[u8],
        sent: u64,
    ) -> Result<(), ClientError> {
        self.check(got, want, sent)?;
        if got.len() < want.len() {
            return Err(ClientError::Short {
                sent,
                received: self.received,
            });
        }
        Ok(())
    }

    /// The server closed a byte stream: the verdict, `sent` bytes sent and
    /// `all_sent` whether the write side was closed after the last. A
    /// server that closed before everything was sent closed early; one
    /// that closed before everything came back, short.
    pub(super) fn at_end(&self, sent: u64, all_sent: bool) -> Result<Summary, ClientError> {
        let received = self.received;
        if !all_sent {
            return Err(ClientError::ClosedEarly { sent, received });
        }
        if received < sent {
            return Err(ClientError::Short { sent, received });
        }
        Ok(Summary { bytes: received })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_finds_first_wrong_byte_and_calls_extra_bytes_extra() {
        let mut c = Checker::new();
        assert!(c.check(b"abc", b"abcdef", 6).is_ok());
        assert!(matches!(
            c.check(b"dXf", b"def", 6),
            Err(ClientError::Mismatch {
                offset: 4,
                expected: b'e',
                got: b'X',
                received: 6
            })
        ));
        let mut c = Checker { received: 10 };
        let e = c.check(b"ab!", b"ab", 12).unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Extra {
                    sent: 12,
                    received: 13
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "echo mismatch at byte 12: an extra byte past the 12 sent (received 13)"
        );
    }

    #[test]
    fn a_whole_message_is_short_when_less_comes_back() {
        let mut c = Checker { received: 3 };
        assert!(c.check_whole(b"ab", b"ab", 5).is_ok());
        let e = c.check_whole(b"c", b"cd", 7).unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Short {
                    sent: 7,
                    received: 6
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_end_of_stream_judges_what_came_back() {
        let c = Checker { received: 4 };
        assert_eq!(c.at_end(4, true).unwrap(), Summary { bytes: 4 });
        assert!(matches!(
            c.at_end(4, false),
            Err(ClientError::ClosedEarly {
                sent: 4,
                received: 4
            })
        ));
        assert!(matches!(
            c.at_end(6, true),
            Err(ClientError::Short {
                sent: 6,
                received: 4
            })
        ));
    }
}
