//! Python's `repr()` of a `bytes` object, the form the log lines show data
//! in, as the Python asyncio example the crate began from logs it.
//!
//! `b'in parts.'`, `b"it's"`, `b'\x00\n'`: the rules are CPython's
//! (`Objects/bytesobject.c`, `PyBytes_Repr`): single quotes unless the data
//! holds a `'` and no `"`; `\\`, the chosen quote, `\t`, `\n`, `\r` escaped;
//! every other byte outside printable ASCII as `\xhh` in lower case.

use std::fmt;

/// Formats a byte slice the way Python's `repr(bytes)` does.
///
/// It implements [`fmt::Display`] and writes straight into the formatter, so
/// nothing is allocated; build one only where the log line is really
/// written (inside a `tracing` macro, whose arguments are not evaluated when
/// the level is off).
///
/// `PyBytes(b"it's")` shows as `b"it's"`, and `PyBytes(b"\x00\n\xff")`
/// as `b'\x00\n\xff'` (the tests below hold it to CPython's table).
#[derive(Clone, Copy)]
pub struct PyBytes<'a>(pub &'a [u8]);

impl fmt::Display for PyBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = if self.0.contains(&b'\'') && !self.0.contains(&b'"') {
            b'"'
        } else {
            b'\''
        };
        f.write_str("b")?;
        f.write_str(if quote == b'"' { "\"" } else { "'" })?;
        // Runs of printable bytes are written in one call: most log data is
        // text, and one write per byte would dominate the cost of a line.
        let mut start = 0;
        for (i, &b) in self.0.iter().enumerate() {
            let plain = (0x20..0x7f).contains(&b) && b != b'\\' && b != quote;
            if plain {
                continue;
            }
            write_ascii(f, &self.0[start..i])?;
            start = i + 1;
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'\t' => f.write_str("\\t")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\'' => f.write_str("\\'")?,
                b'"' => f.write_str("\\\"")?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        write_ascii(f, &self.0[start..])?;
        f.write_str(if quote == b'"' { "\"" } else { "'" })
    }
}

impl fmt::Debug for PyBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn write_ascii(f: &mut fmt::Formatter<'_>, run: &[u8]) -> fmt::Result {
    // Only printable ASCII reaches here, so this cannot fail.
    match std::str::from_utf8(run) {
        Ok(s) => f.write_str(s),
        Err(_) => Err(fmt::Error),
    }
}

#[cfg(test)]
mod tests {
    use super::PyBytes;

    /// Each expected string is what CPython 3.11 prints for `repr(bytes(...))`.
    const TABLE: &[(&[u8], &str)] = &[
        (b"", "b''"),
        (b"in parts.", "b'in parts.'"),
        (b"it's", r#"b"it's""#),
        (b"say \"hi\"", r#"b'say "hi"'"#),
        (b"it's \"both\"", r#"b'it\'s "both"'"#),
        (b"\x00\n", r"b'\x00\n'"),
        (b"\t\r\n", r"b'\t\r\n'"),
        (b"back\\slash", r"b'back\\slash'"),
        (b"\x7f\x80\xff", r"b'\x7f\x80\xff'"),
        (b"\x1b[0m", r"b'\x1b[0m'"),
        (b"\x0b\x0c", r"b'\x0b\x0c'"),
        ("é".as_bytes(), r"b'\xc3\xa9'"),
        (b"'", r#"b"'""#),
        (b"\"", r#"b'"'"#),
        (b"'\\", r#"b"'\\""#),
        (b" ~", "b' ~'"),
    ];

    #[test]
    fn matches_python_table() {
        for (input, want) in TABLE {
            assert_eq!(PyBytes(input).to_string(), *want, "input {input:?}");
        }
    }
}
