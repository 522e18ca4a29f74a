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
    let mut line = [0u8; LINE as usize];
    let mut line_start = u64::MAX;
    for (i, b) in buf.iter_mut().enumerate() {
        let at = offset + i as u64;
        let start = at - at % LINE;
        if start != line_start {
            line_start = start;
            write_line(start, &mut line);
        }
        *b = line[(at % LINE) as usize];
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

/// The offset of the first byte of `data` (which begins at `offset` of a
/// body) that is not the pattern's, or `None` when all are.
pub fn first_mismatch(offset: u64, data: &[u8]) -> Option<u64> {
    let mut want = vec![0u8; data.len()];
    fill(offset, &mut want);
    data.iter()
        .zip(&want)
        .position(|(a, b)| a != b)
        .map(|i| offset + i as u64)
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
}
