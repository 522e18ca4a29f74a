//! The bytes the bench sends, and the check of what comes back.
//!
//! Each connection sends one endless pseudo-random stream, keyed by the
//! connection's id: the byte at stream offset `o` is byte `o % 8` of
//! `word(key, o / 8)`, a wyrand-style mix of the key and the word index. The
//! checker regenerates any part of the stream from the key and the offset
//! alone, so nothing that was sent is kept, and both sides work in place on
//! the buffers they already have: no allocation, one multiply per 8 bytes.
//!
//! Random access matters: with pipelining or in stream mode, the reader
//! checks bytes the writer sent long ago. Keying by connection means a
//! server that mixes up two connections' data is caught, and a stream that
//! does not repeat means one that replays a stale buffer is caught too.

/// wyrand's increment: odd, so word indexes map to distinct states.
const STEP: u64 = 0xa076_1d64_78bd_642f;
/// wyrand's mixing constant.
const MIX: u64 = 0xe703_7ed1_a0b4_28db;

/// The stream of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// The generator's starting state: the key, spread.
    start: u64,
}

/// The first byte that differs from the pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Its offset in the connection's stream.
    pub offset: u64,
    /// The byte the pattern has there.
    pub expected: u8,
    /// The byte that came back.
    pub got: u8,
}

impl Pattern {
    /// The stream of connection `key`.
    pub fn new(key: u64) -> Pattern {
        // Spread keys apart so that neighbouring ids start far from each
        // other in the sequence.
        Pattern {
            start: mix(key ^ 0x5851_f42d_4c95_7f2d, MIX),
        }
    }

    /// The 8 bytes at stream offset `8 * index`.
    #[inline]
    fn word(&self, index: u64) -> u64 {
        let s = self
            .start
            .wrapping_add(index.wrapping_add(1).wrapping_mul(STEP));
        mix(s, s ^ MIX)
    }

    /// Writes the stream's bytes from `offset` on into `buf`.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = 0;
        let mut off = offset;
        // A leading partial word, when `offset` is not a multiple of 8.
        let lead = ((8 - off % 8) % 8) as usize;
        if lead > 0 {
            let bytes = self.word(off / 8).to_le_bytes();
            let n = lead.min(buf.len());
            let from = (off % 8) as usize;
            buf[..n].copy_from_slice(&bytes[from..from + n]);
            pos = n;
            off += n as u64;
        }
        let mut index = off / 8;
        let mut chunks = buf[pos..].chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.word(index).to_le_bytes());
            index += 1;
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let n = tail.len();
            tail.copy_from_slice(&self.word(index).to_le_bytes()[..n]);
        }
    }

    /// Checks that `buf` holds the stream's bytes from `offset` on; returns
    /// the first one that does not.
    pub fn check(&self, offset: u64, buf: &[u8]) -> Result<(), Mismatch> {
        let mut pos = 0;
        let mut off = offset;
        let lead = ((8 - off % 8) % 8) as usize;
        if lead > 0 {
            let n = lead.min(buf.len());
            let from = (off % 8) as usize;
            let want = self.word(off / 8).to_le_bytes();
            self.compare(off, &buf[..n], &want[from..from + n])?;
            pos = n;
            off += n as u64;
        }
        let mut index = off / 8;
        let mut chunks = buf[pos..].chunks_exact(8);
        for chunk in &mut chunks {
            let want = self.word(index);
            // One comparison per word; the byte-wise search runs only on a
            // mismatch.
            let mut got = [0u8; 8];
            got.copy_from_slice(chunk);
            if u64::from_le_bytes(got) != want {
                self.compare(index * 8, chunk, &want.to_le_bytes())?;
            }
            index += 1;
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let want = self.word(index).to_le_bytes();
            self.compare(index * 8, tail, &want[..tail.len()])?;
        }
        Ok(())
    }

    fn compare(&self, offset: u64, got: &[u8], want: &[u8]) -> Result<(), Mismatch> {
        match got.iter().zip(want).position(|(g, w)| g != w) {
            None => Ok(()),
            Some(i) => Err(Mismatch {
                offset: offset + i as u64,
                expected: want[i],
                got: got[i],
            }),
        }
    }
}

/// wyhash's `wymix`: the high and low halves of a 128-bit product, folded.
#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let t = u128::from(a) * u128::from(b);
    (t >> 64) as u64 ^ t as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(key: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        Pattern::new(key).fill(0, &mut v);
        v
    }

    #[test]
    fn any_slice_matches_the_whole_stream() {
        let p = Pattern::new(7);
        let whole = stream(7, 200);
        for start in 0..40 {
            for len in [0, 1, 3, 7, 8, 9, 15, 16, 17, 64, 100] {
                let mut part = vec![0xAA; len];
                p.fill(start as u64, &mut part);
                assert_eq!(part, whole[start..start + len], "start {start} len {len}");
                assert_eq!(p.check(start as u64, &part), Ok(()));
            }
        }
    }

    #[test]
    fn finds_the_first_wrong_byte_anywhere() {
        let p = Pattern::new(3);
        let whole = stream(3, 100);
        for start in [0usize, 1, 5, 8, 13] {
            for bad in start..100 {
                let mut got = whole[start..].to_vec();
                got[bad - start] ^= 0x01;
                let err = p.check(start as u64, &got).unwrap_err();
                assert_eq!(err.offset, bad as u64);
                assert_eq!(err.expected, whole[bad]);
                assert_eq!(err.got, whole[bad] ^ 0x01);
            }
        }
    }

    #[test]
    fn keys_give_different_streams() {
        let a = stream(1, 64);
        let b = stream(2, 64);
        assert_ne!(a, b);
        assert!(Pattern::new(2).check(0, &a).is_err());
        // And a stream does not repeat itself: a replayed chunk is caught.
        let long = stream(1, 1 << 17);
        assert_ne!(long[..65536], long[65536..]);
        assert!(Pattern::new(1).check(65536, &long[..65536]).is_err());
    }

    #[test]
    fn looks_random_enough_to_catch_simple_corruption() {
        // Zeros and constant runs (a server echoing a zeroed buffer) fail.
        let p = Pattern::new(9);
        assert!(p.check(0, &[0u8; 64]).is_err());
        assert!(p.check(0, &[0xFFu8; 64]).is_err());
        // Every byte value shows up in a modest stretch of the stream.
        let s = stream(9, 1 << 14);
        let mut seen = [false; 256];
        for b in s {
            seen[b as usize] = true;
        }
        assert!(seen.iter().all(|&x| x));
    }
}
