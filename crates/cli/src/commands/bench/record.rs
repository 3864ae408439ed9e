//! `bench run --record`: one CSV line per measured request, so a run spanning a rolling update
//! can be cut into phases by time afterwards and every acknowledged create checked.

use super::scenario::Answer;
use anyhow::Context;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

pub const HEADER: &str = "start_unix_ms,latency_us,status,kind,created_id";

/// One measured request.
#[derive(Debug)]
pub struct Record {
    start_unix_ms: u128,
    latency: Duration,
    /// 0 when no answer arrived (connection refused or reset, timeout).
    status: u16,
    kind: &'static str,
    created: Option<String>,
}

impl Record {
    pub fn new<E>(started: SystemTime, latency: Duration, answer: &Result<Answer, E>) -> Self {
        let start_unix_ms = started.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        match answer {
            Ok(answer) => Self {
                start_unix_ms,
                latency,
                status: answer.status,
                kind: answer.kind.as_str(),
                created: answer.created.clone(),
            },
            Err(_) => Self { start_unix_ms, latency, status: 0, kind: "unanswered", created: None },
        }
    }

    fn write_csv(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{},{},{},{},{}",
            self.start_unix_ms,
            self.latency.as_micros(),
            self.status,
            self.kind,
            self.created.as_deref().unwrap_or_default()
        )
    }
}

/// Appends `records` in start order, with the header when the file is new.
pub fn append(path: &Path, records: &mut [Record]) -> anyhow::Result<()> {
    records.sort_by_key(|r| r.start_unix_ms);
    let is_new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut out = BufWriter::new(file);
    if is_new {
        writeln!(out, "{HEADER}")?;
    }
    for record in records.iter() {
        record.write_csv(&mut out)?;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::scenario::RequestKind;

    #[test]
    fn records_are_csv_lines_under_one_header_in_start_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.csv");
        let at = |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let created = Answer { status: 201, kind: RequestKind::Create, created: Some("abc".into()) };
        let refused = Answer { status: 503, kind: RequestKind::Read, created: None };
        let mut first = [
            Record::new(at(2_000), Duration::from_micros(1500), &Ok::<_, ()>(created)),
            Record::new(at(1_000), Duration::from_micros(7), &Ok::<_, ()>(refused)),
        ];
        append(&path, &mut first).unwrap();
        let read = Answer { status: 200, kind: RequestKind::Read, created: None };
        append(&path, &mut [Record::new(at(3_000), Duration::from_micros(9), &Ok::<_, ()>(read))]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{HEADER}\n1000,7,503,read,\n2000,1500,201,create,abc\n3000,9,200,read,\n")
        );
    }
}
