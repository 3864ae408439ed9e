//! Streaming over an export file, one document at a time, so a large export never has to fit
//! in memory. `mongoexport` writes one document per line by default and one JSON array with
//! `--jsonArray`; the first non-blank character tells which.

use anyhow::Context;
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
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
        return each_element(reader, max_document_bytes, each);
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

/// A JSON array that is not well-formed, and where: one past the offending byte, counted from
/// the `[` (for an element spanning lines, its start).
#[derive(Debug, thiserror::Error)]
#[error("malformed JSON array: {message}")]
pub struct MalformedArray {
    pub offset: u64,
    pub message: String,
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

/// Reads a JSON array (the reader is at its `[`) one element at a time: the element's bytes
/// are found by a scan that only tracks strings and nesting, then parsed alone. Parsing each
/// element from a slice is many times faster than a streaming parser pulling bytes one by one,
/// and no more than `max` bytes of an element are ever held.
fn each_element(
    mut reader: impl BufRead,
    max: usize,
    mut each: impl FnMut(Location, Scanned) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    reader.consume(1);
    let mut offset: u64 = 1;
    let mut element = Vec::new();
    let (mut start, mut index) = (offset, 0_u64);
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            let message = "EOF while parsing a list".to_owned();
            return Err(MalformedArray { offset, message }.into());
        }
        let mut boundary = None;
        let mut i = 0;
        while i < buffer.len() {
            let byte = buffer[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
            } else {
                match byte {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth > 0 => depth -= 1,
                    b',' | b']' if depth == 0 => {
                        boundary = Some(byte);
                        break;
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        if element.len() + i > max {
            return Err(DocumentTooLarge { limit: max }.into());
        }
        element.extend_from_slice(&buffer[..i]);
        let consumed = i + usize::from(boundary.is_some());
        reader.consume(consumed);
        offset += consumed as u64;
        let Some(boundary) = boundary else { continue };
        let empty_array = boundary == b']' && index == 0 && element.iter().all(u8::is_ascii_whitespace);
        if !empty_array {
            index += 1;
            let value = serde_json::from_slice::<Value>(&element).map_err(|e| {
                // Exact within a one-line element, else the element's start.
                let within = if e.line() == 1 { e.column().saturating_sub(1) as u64 } else { 0 };
                MalformedArray { offset: start + within + 1, message: e.to_string() }
            })?;
            if each(Location::Element(index), Ok(value)).is_break() {
                return Ok(());
            }
        }
        element.clear();
        start = offset;
        if boundary == b']' {
            return expect_only_whitespace(reader, offset);
        }
    }
}

/// After the array: only whitespace may follow.
fn expect_only_whitespace(mut reader: impl BufRead, offset: u64) -> anyhow::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        if !buffer.iter().all(u8::is_ascii_whitespace) {
            anyhow::bail!("unexpected data after the JSON array: trailing characters after byte {offset}");
        }
        let len = buffer.len();
        reader.consume(len);
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
        assert!(
            scan_bounded(fits.as_bytes(), 64, |_, _| ControlFlow::Continue(())).is_ok(),
            "the limit is per element"
        );
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
