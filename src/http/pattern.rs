//! The body of a `size=N` response: a pattern a client can check byte by
//! byte, and a person can read.
//!
//! The body is a run of 16-byte lines, each the offset of its own first
//! byte as 15 decimal digits, then `\n`, cut at N bytes:
//!
//! ```text
//! 000000000000000
//! 000000000000016
//! 000000000000032
//! ```
//!
//! So byte `i` is [`byte_at(i)`](byte_at), a lost or repeated stretch
//! shows as a wrong offset, and `tail -c 16` names the end.

/// The length of one line of the pattern.
pub const LINE: u64 = 16;

/// The pattern's byte at `offset`.
pub fn byte_at(offset: u64) -> u8 {
    let line_start = offset - offset % LINE;
    let column = (offset % LINE) as u32;
    if column == 15 {
        return b'\n';
    }
    // The digit of `line_start` at `column`, counted from the left of 15.
    let power = 14 - column;
    let digit = (line_start / 10u64.pow(power)) % 10;
    b'0' + digit as u8
}

/// Fills `buf` with the pattern from `offset` on.
pub fn fill(offset: u64, buf: &mut [u8]) {
    pieces(offset, buf.len(), |at, piece| {
        buf[at..at + piece.len()].copy_from_slice(piece);
        true
    });
}

/// The offset of the first byte of `data` (which begins at `offset` of a
/// body) that is not the pattern's, or `None` when all are.
pub fn first_mismatch(offset: u64, data: &[u8]) -> Option<u64> {
    let mut bad = None;
    pieces(offset, data.len(), |at, piece| {
        let got = &data[at..at + piece.len()];
        if got == piece {
            return true;
        }
        let i = got.iter().zip(piece).position(|(g, w)| g != w);
        bad = Some(offset + (at + i.unwrap_or(0)) as u64);
        false
    });
    bad
}

/// Hands `f` the pattern's `len` bytes from `offset` on, a line (or the
/// part of one) at a time, with where each piece starts counted from
/// `offset`, until `f` says stop. Each next line is the last one plus 16,
/// done on its digits: no division per byte, no buffer, whatever `len` is
/// (the server streams bodies of gigabytes, the bench checks them).
fn pieces(offset: u64, len: usize, mut f: impl FnMut(usize, &[u8]) -> bool) {
    let mut line = [0u8; LINE as usize];
    write_line(offset - offset % LINE, &mut line);
    let mut from = (offset % LINE) as usize;
    let mut at = 0;
    while at < len {
        let n = (LINE as usize - from).min(len - at);
        if !f(at, &line[from..from + n]) {
            return;
        }
        at += n;
        from = 0;
        next_line(&mut line);
    }
}

fn write_line(start: u64, line: &mut [u8; LINE as usize]) {
    let mut n = start;
    for slot in line[..15].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    line[15] = b'\n';
}

/// Turns `line` into the next one: adds [`LINE`] to its 15 digits (which,
/// as [`write_line`]'s, wrap at 10^15).
fn next_line(line: &mut [u8; LINE as usize]) {
    let mut carry = LINE as u8;
    for slot in line[..15].iter_mut().rev() {
        let digit = *slot - b'0' + carry;
        *slot = b'0' + digit % 10;
        carry = digit / 10;
        if carry == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_their_offsets() {
        let mut buf = vec![0u8; 40];
        fill(0, &mut buf);
        assert_eq!(&buf, b"000000000000000\n000000000000016\n00000000");
        let mut buf = vec![0u8; 20];
        fill(1_000_000 - 4, &mut buf);
        assert_eq!(&buf, b"984\n000000001000000\n");
    }

    #[test]
    fn byte_at_agrees_with_fill() {
        let mut buf = vec![0u8; 5000];
        fill(123_456, &mut buf);
        for (i, &b) in buf.iter().enumerate() {
            assert_eq!(byte_at(123_456 + i as u64), b, "at {i}");
        }
        assert_eq!(first_mismatch(123_456, &buf), None);
        buf[77] ^= 1;
        assert_eq!(first_mismatch(123_456, &buf), Some(123_456 + 77));
    }

    #[test]
    fn lines_carry_across_every_digit_and_wrap_as_written() {
        // The step from one line to the next carries through nines, and
        // past 15 digits wraps as `write_line` does.
        for start in [16, 999_984, 99_999_999_999_984, 999_999_999_999_984] {
            let mut buf = vec![0u8; 64];
            fill(start - 3, &mut buf);
            for (i, &b) in buf.iter().enumerate() {
                assert_eq!(byte_at(start - 3 + i as u64), b, "from {start}, at {i}");
            }
            assert_eq!(first_mismatch(start - 3, &buf), None);
            let last = buf.len() - 1;
            buf[last] ^= 1;
            assert_eq!(
                first_mismatch(start - 3, &buf),
                Some(start - 3 + last as u64)
            );
        }
    }
}
