//! Streaming over an export file, one document at a time, so a large export never has to fit
//! in memory. `mongoexport` writes one document per line by default and one JSON array with
//! `--jsonArray`; the first non-blank character tells which.

use anyhow::Context;
use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;

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
pub fn scan_reader(reader: impl BufRead, each: impl FnMut(Location, Scanned) -> ControlFlow<()>) -> anyhow::Result<()> {
    scan_bounded(reader, usize::MAX, each)
}

/// The start of the reason given for a line that is not UTF-8.
pub const NOT_UTF8: &str = "not UTF-8 text";

/// A document took more than the allowed bytes of input (see [`scan_bounded`]).
#[derive(Debug, thiserror::Error)]
#[error("a document is larger than {limit} bytes")]
pub struct DocumentTooLarge {
    pub limit: usize,
}

/// As [`scan_reader`], holding no more than about `max_document_bytes` of the input at once,
/// whatever its size: a longer line is rejected (and skipped without being held); a longer
/// array element ends the scan with a [`DocumentTooLarge`] error, since an array cannot be
/// resynchronised past it.
pub fn scan_bounded(
    mut reader: impl BufRead,
    max_document_bytes: usize,
    mut each: impl FnMut(Location, Scanned) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    if starts_with_array(&mut reader)? {
        let used = Rc::new(Cell::new(0));
        let offset = Rc::new(Cell::new(0));
        let metered = Metered { inner: reader, used: used.clone(), offset: offset.clone(), limit: max_document_bytes };
        let mut de = serde_json::Deserializer::from_reader(metered);
        let elements = de.deserialize_seq(EachElement { each: &mut each, used: &used });
        if used.get() > max_document_bytes {
            return Err(DocumentTooLarge { limit: max_document_bytes }.into());
        }
        elements.map_err(|e| MalformedArray { offset: offset.get(), message: e.to_string() })?;
        return de.end().map_err(|e| anyhow::anyhow!("unexpected data after the JSON array: {e}"));
    }
    let mut line = Vec::new();
    let mut number = 0_u64;
    loop {
        line.clear();
        let limit = u64::try_from(max_document_bytes).unwrap_or(u64::MAX).saturating_add(1);
        if (&mut reader).take(limit).read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let location = Location::Line(number);
        let scanned = if line.len() > max_document_bytes && line.last() != Some(&b'\n') {
            reader.skip_until(b'\n')?;
            Err(DocumentTooLarge { limit: max_document_bytes }.to_string())
        } else {
            match std::str::from_utf8(&line) {
                Err(e) => Err(format!("{NOT_UTF8}: {e}")),
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => serde_json::from_str(text).map_err(|e| format!("not JSON: {e}")),
            }
        };
        if each(location, scanned).is_break() {
            return Ok(());
        }
    }
}

/// A JSON array that is not well-formed, and how many bytes of it were read when that was
/// found (at most one past the offending byte).
#[derive(Debug, thiserror::Error)]
#[error("malformed JSON array: {message}")]
pub struct MalformedArray {
    pub offset: u64,
    pub message: String,
}

/// Counts the bytes the JSON parser takes for the current element and fails the read once
/// they pass `limit`, so one huge element is refused after `limit` bytes instead of being
/// built in memory whole.
struct Metered<R> {
    inner: R,
    used: Rc<Cell<usize>>,
    /// Bytes taken since the start of the array.
    offset: Rc<Cell<u64>>,
    limit: usize,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.limit.saturating_sub(self.used.get());
        if room == 0 {
            self.used.set(self.limit.saturating_add(1));
            return Err(std::io::Error::other(DocumentTooLarge { limit: self.limit }));
        }
        let len = buf.len().min(room);
        let read = self.inner.read(&mut buf[..len])?;
        self.used.set(self.used.get() + read);
        self.offset.set(self.offset.get() + read as u64);
        Ok(read)
    }
}

/// Skips leading whitespace (and a UTF-8 byte order mark) and peeks at the first character.
pub fn starts_with_array(reader: &mut impl BufRead) -> anyhow::Result<bool> {
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

struct EachElement<'a, F> {
    each: &'a mut F,
    /// Bytes taken by the element being read, reset before each one.
    used: &'a Cell<usize>,
}

impl<'de, F: FnMut(Location, Scanned) -> ControlFlow<()>> Visitor<'de> for EachElement<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of documents")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        self.used.set(0);
        while let Some(value) = seq.next_element::<Value>()? {
            index += 1;
            if (self.each)(Location::Element(index), Ok(value)).is_break() {
                // Drain the rest so the deserializer ends cleanly.
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                break;
            }
            self.used.set(0);
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
    fn an_overlong_line_is_rejected_and_skipped_and_the_next_one_read() {
        let text = format!("{{\"a\":1}}\n{{\"long\":\"{}\"}}\n{{\"b\":2}}", "x".repeat(500));
        let mut seen = Vec::new();
        scan_bounded(text.as_bytes(), 64, |location, doc| {
            seen.push((location, doc.map_err(|reason| reason.contains("larger than 64 bytes"))));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!((seen[1].0, seen[1].1.clone().unwrap_err()), (Location::Line(2), true));
        assert_eq!(seen[2].0, Location::Line(3));
        assert!(seen[2].1.is_ok());
    }

    #[test]
    fn an_overlong_array_element_stops_the_scan_after_the_limit() {
        let text = format!("[{{\"a\":1}}, {{\"long\":\"{}\"}}, {{\"b\":2}}]", "x".repeat(10_000));
        let mut seen = 0;
        let err = scan_bounded(text.as_bytes(), 64, |_, _| {
            seen += 1;
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert_eq!(err.downcast_ref::<DocumentTooLarge>().map(|e| e.limit), Some(64));
        assert_eq!(seen, 1, "the small element before it was read");
        let fits = format!("[{}]", ["{\"a\":1}"; 50].join(","));
        assert!(scan_bounded(fits.as_bytes(), 64, |_, _| ControlFlow::Continue(())).is_ok(), "the limit is per element");
    }

    #[test]
    fn a_line_that_is_not_utf8_is_named_so() {
        let mut reasons = Vec::new();
        scan_bounded(&b"{\"a\":\"\xff\"}\n"[..], 64, |_, doc| {
            reasons.push(doc.unwrap_err());
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(reasons[0].starts_with(NOT_UTF8), "{reasons:?}");
    }

    #[test]
    fn a_broken_array_is_an_error_with_a_position() {
        let err = scan_text("[{\"a\":1}, {oops}]").unwrap_err().to_string();
        assert!(err.contains("line 1 column"), "{err}");
    }
}
