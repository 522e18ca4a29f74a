//! Pretty JSON for people: indented as `serde_json`'s pretty printer
//! does, except that an array inside an array is written on one line, so
//! that a reflection shows each header pair (`["host", "x"]`) on a line of
//! its own instead of four.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// `value` as pretty JSON with inner arrays on one line.
pub(super) fn to_string(value: &impl Serialize) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
    value.serialize(&mut ser)?;
    // serde_json writes only valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The formatter: `indent` levels of two spaces; `inline` counts the open
/// containers written on one line; `arrays` says, for each open container,
/// whether it is an array.
#[derive(Default)]
struct Pretty {
    indent: usize,
    inline: usize,
    has_value: bool,
    arrays: Vec<bool>,
}

impl Pretty {
    fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.indent {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    /// Opens a container: on one line when it is inside one, or when it is
    /// an array inside an array.
    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, array: bool) -> io::Result<()> {
        let in_array = self.arrays.last() == Some(&true);
        if self.inline > 0 || (array && in_array) {
            self.inline += 1;
        } else {
            self.indent += 1;
            self.has_value = false;
        }
        self.arrays.push(array);
        w.write_all(if array { b"[" } else { b"{" })
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, array: bool) -> io::Result<()> {
        self.arrays.pop();
        if self.inline > 0 {
            self.inline -= 1;
        } else {
            self.indent -= 1;
            if self.has_value {
                self.newline(w)?;
            }
        }
        self.has_value = true;
        w.write_all(if array { b"]" } else { b"}" })
    }

    fn item<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if self.inline > 0 {
            return w.write_all(if first { b"" } else { b", " });
        }
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, true)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, true)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, false)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, false)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn inner_arrays_take_one_line_and_the_rest_is_indented() {
        let v = json!({
            "headers": [["host", "h"], ["x-a", "1", "gA=="]],
            "body": {"length": 0},
            "empty": [],
            "tls": null
        });
        let text = super::to_string(&v).unwrap();
        assert_eq!(
            text,
            "{\n  \"body\": {\n    \"length\": 0\n  },\n  \"empty\": [],\n  \"headers\": [\n    \
             [\"host\", \"h\"],\n    [\"x-a\", \"1\", \"gA==\"]\n  ],\n  \"tls\": null\n}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }
}
