//! CRC32c (Castagnoli), as the PROXY protocol's `PP2_TYPE_CRC32C` TLV
//! uses it (RFC 4960, appendix B): reflected, polynomial 0x82F63B78,
//! initial value and final XOR all ones. A header is at most 64 KiB and
//! is checked once per connection, so a byte-wise table is plenty.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// One entry per byte value, computed at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// A running CRC32c: feed it pieces with [`update`](Crc32c::update), then
/// read [`finish`](Crc32c::finish).
#[derive(Debug, Clone, Copy)]
pub struct Crc32c(u32);

impl Default for Crc32c {
    fn default() -> Self {
        Crc32c(!0)
    }
}

impl Crc32c {
    /// Adds `data` to the checksum.
    pub fn update(mut self, data: &[u8]) -> Crc32c {
        for &b in data {
            self.0 = TABLE[((self.0 ^ u32::from(b)) & 0xff) as usize] ^ (self.0 >> 8);
        }
        self
    }

    /// The checksum of everything added.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

/// The CRC32c of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    Crc32c::default().update(data).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_check_values() {
        // The standard check value, and RFC 3720's (iSCSI) test vectors.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn pieces_add_up_to_the_whole() {
        let data = b"a PROXY header, checked in pieces";
        for cut in 0..data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(Crc32c::default().update(a).update(b).finish(), crc32c(data));
        }
    }
}
