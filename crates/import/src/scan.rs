//! Streaming over an export file, one document at a time, so a large export never has to fit
//! in memory. `mongoexport` writes one document per line by default and one JSON array with
//! `--jsonArray`; the first non-blank character tells which.

use anyhow::Context;
use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::Path;

/// Where a document is in the file, 1-based, for error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Line(u64),
    Element(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Element(n) => write!(f, "array element {n}"),
        }
    }
}

/// A document, or why its text is not JSON.
pub type Scanned = Result<Value, String>;

/// Calls `each` for every document in order, until it returns `Break`. A syntax error inside a
/// JSON array cannot be skipped over, so it ends the scan with an error.
pub fn scan(path: &Path, each: impl FnMut(Location, Scanned) -> ControlFlow<()>) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    scan_reader(BufReader::with_capacity(1 << 16, file), each)
}

/// As [`scan`], over any buffered reader (an uploaded file in memory is `&[u8]`).
pub fn scan_reader(
    mut reader: impl BufRead,
    mut each: impl FnMut(Location, Scanned) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    if starts_with_array(&mut reader)? {
        let mut de = serde_json::Deserializer::from_reader(reader);
        de.deserialize_seq(EachElement(&mut each)).map_err(|e| anyhow::anyhow!("malformed JSON array: {e}"))?;
        return de.end().map_err(|e| anyhow::anyhow!("unexpected data after the JSON array: {e}"));
    }
    for (index, line) in reader.lines().enumerate() {
        let location = Location::Line(index as u64 + 1);
        let scanned = match line {
            Err(e) => Err(format!("unreadable line: {e}")),
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}")),
        };
        if each(location, scanned).is_break() {
            break;
        }
    }
    Ok(())
}

/// Skips leading whitespace (and a UTF-8 byte order mark) and peeks at the first character.
fn starts_with_array(reader: &mut impl BufRead) -> anyhow::Result<bool> {
    loop {
        let buffer = reader.fill_buf()?;
        let Some(&first) = buffer.first() else { return Ok(false) };
        if first.is_ascii_whitespace() {
            reader.consume(1);
        } else if buffer.starts_with(b"\xef\xbb\xbf") {
            reader.consume(3);
        } else {
            return Ok(first == b'[');
        }
    }
}

struct EachElement<'a, F>(&'a mut F);

impl<'de, F: FnMut(Location, Scanned) -> ControlFlow<()>> Visitor<'de> for EachElement<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of documents")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(value) = seq.next_element::<Value>()? {
            index += 1;
            if (self.0)(Location::Element(index), Ok(value)).is_break() {
                // Drain the rest so the deserializer ends cleanly.
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scan_text(text: &str) -> anyhow::Result<Vec<(Location, bool)>> {
        let mut file = tempfile::NamedTempFile::new()?;
        file.write_all(text.as_bytes())?;
        let mut seen = Vec::new();
        scan(file.path(), |location, doc| {
            seen.push((location, doc.is_ok()));
            ControlFlow::Continue(())
        })?;
        Ok(seen)
    }

    #[test]
    fn json_lines_are_numbered_by_line_and_blank_lines_skipped() {
        let seen = scan_text("{\"a\":1}\n\n{broken\n{\"b\":2}\n").unwrap();
        assert_eq!(seen, [(Location::Line(1), true), (Location::Line(3), false), (Location::Line(4), true)]);
    }

    #[test]
    fn arrays_are_numbered_by_element() {
        let seen = scan_text("\u{feff}\n [ {\"a\":1}, 5 ]\n").unwrap();
        assert_eq!(seen, [(Location::Element(1), true), (Location::Element(2), true)]);
    }

    #[test]
    fn a_broken_array_is_an_error_with_a_position() {
        let err = scan_text("[{\"a\":1}, {oops}]").unwrap_err().to_string();
        assert!(err.contains("line 1 column"), "{err}");
    }
}
