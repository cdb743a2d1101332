//! Replaying recorded likes from a file at a chosen rate.
//!
//! - JSON lines (`.jsonl`, `.ndjson`): one `{"video_id": "...", "count": n, "ts": ms}`
//!   per line, `count` and `ts` optional (the worker's `json` input format).
//! - CSV (`.csv`): a header naming a `video_id` (or `video_uid`) column and
//!   optionally `count` and `ts`; other columns are ignored.
//!
//! Every event is validated with the ingest API's rules; errors name the line.

use crate::ingest::Like;
use crate::ingest::request::{check_count, check_ts, check_video_id};
use std::io::BufRead;
use std::path::Path;
use videocounter_protocol::LikeEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Jsonl,
    Csv,
}

impl FileFormat {
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// An event read from a file, or why line `line` is not one.
pub type ReplayItem = (u64, Result<Like, String>);

fn like_from(video_id: String, count: Option<i64>, ts: Option<i64>) -> Result<Like, String> {
    check_video_id(&video_id).map_err(|e| e.to_string())?;
    Ok(Like {
        count: check_count(count, "count").map_err(|e| e.to_string())?,
        ts: check_ts(ts, "ts").map_err(|e| e.to_string())?,
        video_id,
    })
}

/// One JSON line; blank lines are `None`.
pub fn parse_json_line(line: &str) -> Result<Option<Like>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let event: LikeEvent = serde_json::from_str(line).map_err(|e| format!("not a like event: {e}"))?;
    like_from(event.video_id, event.count, event.ts).map(Some)
}

/// The events of a JSON-lines stream, with 1-based line numbers.
pub fn json_lines(reader: impl BufRead + 'static) -> impl Iterator<Item = ReplayItem> {
    reader.lines().enumerate().filter_map(|(i, line)| {
        let n = i as u64 + 1;
        match line {
            Err(e) => Some((n, Err(format!("cannot read: {e}")))),
            Ok(text) => parse_json_line(&text).transpose().map(|r| (n, r)),
        }
    })
}

/// Column positions found in a CSV header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvColumns {
    pub video_id: usize,
    pub count: Option<usize>,
    pub ts: Option<usize>,
}

pub fn csv_columns(header: &csv::StringRecord) -> Result<CsvColumns, String> {
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    Ok(CsvColumns {
        video_id: find(&["video_id", "video_uid"])
            .ok_or_else(|| format!("the header {header:?} has no video_id (or video_uid) column"))?,
        count: find(&["count"]),
        ts: find(&["ts", "timestamp"]),
    })
}

pub fn parse_csv_record(record: &csv::StringRecord, columns: CsvColumns) -> Result<Like, String> {
    let number = |idx: Option<usize>, name: &str| -> Result<Option<i64>, String> {
        match idx.and_then(|i| record.get(i)).map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| format!("{name} {text:?} is not an integer")),
        }
    };
    let video_id = record
        .get(columns.video_id)
        .ok_or("the row has no video_id field")?
        .to_owned();
    like_from(
        video_id,
        number(columns.count, "count")?,
        number(columns.ts, "ts")?,
    )
}

/// The events of a CSV stream; the header is line 1.
pub fn csv_rows(reader: impl std::io::Read + 'static) -> Result<impl Iterator<Item = ReplayItem>, String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| format!("cannot read the CSV header: {e}"))?
        .clone();
    let columns = csv_columns(&header)?;
    Ok(csv.into_records().map(move |row| match row {
        Ok(record) => {
            let line = record.position().map_or(0, |p| p.line());
            (line, parse_csv_record(&record, columns))
        }
        Err(e) => (e.position().map_or(0, |p| p.line()), Err(e.to_string())),
    }))
}

/// How many events should have been sent `elapsed_secs` after the start at
/// `rate_per_sec`: the first at once, then one every `1 / rate` seconds.
pub fn due_by(rate_per_sec: f64, elapsed_secs: f64) -> u64 {
    (elapsed_secs * rate_per_sec).floor() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_extensions() {
        assert_eq!(
            FileFormat::from_path(Path::new("a/events.jsonl")),
            Some(FileFormat::Jsonl)
        );
        assert_eq!(FileFormat::from_path(Path::new("e.CSV")), Some(FileFormat::Csv));
        assert_eq!(FileFormat::from_path(Path::new("e.parquet")), None);
    }

    #[test]
    fn json_lines_with_line_numbers_and_errors() {
        let text =
            "{\"video_id\":\"a\"}\n\n{\"video_id\":\"b\",\"count\":3,\"ts\":5}\n{\"video_id\":\"\"}\nnope\n";
        let items: Vec<_> = json_lines(std::io::Cursor::new(text)).collect();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0], (1, Ok(Like::one("a"))));
        assert_eq!(
            items[1],
            (
                3,
                Ok(Like {
                    video_id: "b".into(),
                    count: 3,
                    ts: Some(5)
                })
            )
        );
        assert_eq!(items[2].0, 4);
        assert!(items[2].1.as_ref().unwrap_err().contains("video id is empty"));
        assert_eq!(items[3].0, 5);
        assert!(items[3].1.as_ref().unwrap_err().contains("not a like event"));
    }

    #[test]
    fn csv_with_any_column_order_and_optional_fields() {
        let text = "ts,video_uid,extra,count\n1000,a,x,2\n,b,y,\n5,c,z,zero\n";
        let items: Vec<_> = csv_rows(std::io::Cursor::new(text)).unwrap().collect();
        assert_eq!(
            items[0],
            (
                2,
                Ok(Like {
                    video_id: "a".into(),
                    count: 2,
                    ts: Some(1000)
                })
            )
        );
        assert_eq!(items[1], (3, Ok(Like::one("b"))));
        assert_eq!(items[2].0, 4);
        assert!(
            items[2]
                .1
                .as_ref()
                .unwrap_err()
                .contains("count \"zero\" is not an integer")
        );
    }

    #[test]
    fn csv_without_an_id_column_is_refused() {
        let err = csv_rows(std::io::Cursor::new("name,count\na,1\n")).err().unwrap();
        assert!(err.contains("no video_id"), "{err}");
    }

    #[test]
    fn pacing_sends_the_first_at_once_then_one_per_period() {
        assert_eq!(due_by(10.0, 0.0), 1);
        assert_eq!(due_by(10.0, 0.099), 1);
        assert_eq!(due_by(10.0, 0.1), 2);
        assert_eq!(due_by(10.0, 1.0), 11);
        assert_eq!(due_by(0.5, 3.9), 2);
    }
}
