//! JSON-lines reading that never dies on a bad line: the seed's weak point.
//!
//! [`LineReader`] opens plain or gzip files (detected from the magic bytes, not the name) and hands out
//! batches of `(line_number, line)`; [`parse_batch`] parses a batch in parallel, and every line that is not
//! valid JSON (or not a JSON object) becomes a [`BadLine`] naming the file and line instead of an error.
//! Batches keep memory bounded, so the same reader serves `load_df` and streaming scoring of files larger
//! than memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::{Map, Value};

/// A line that could not be used, with where it was and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// File the line came from.
    pub file: PathBuf,
    /// 1-based line number in the (decompressed) file.
    pub line: usize,
    /// What was wrong (the JSON parser's message, or the shape problem).
    pub error: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.error)
    }
}

/// Reads a JSON-lines file (plain or gzip) in batches of numbered lines.
pub struct LineReader {
    path: PathBuf,
    inner: Box<dyn BufRead + Send>,
    line_no: usize,
    done: bool,
}

impl LineReader {
    /// Opens `path`; gzip is detected from its first two bytes. Errors name the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut f = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut magic = [0u8; 2];
        let n = read_up_to(&mut f, &mut magic).with_context(|| format!("cannot read {}", path.display()))?;
        let f = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let inner: Box<dyn BufRead + Send> = if n == 2 && magic == [0x1f, 0x8b] {
            Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(f)))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, f))
        };
        Ok(LineReader { path, inner, line_no: 0, done: false })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Up to `max_lines` next lines with their 1-based numbers; `None` at the end of the file.
    ///
    /// Blank lines are skipped (they are not records). Invalid UTF-8 is replaced, and the line is then
    /// reported by the parser if it no longer parses. A read error (truncated gzip, I/O) is an error that
    /// names the file and the line reached.
    pub fn next_batch(&mut self, max_lines: usize) -> Result<Option<Vec<(usize, String)>>> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(max_lines.min(1 << 16));
        let mut buf = Vec::with_capacity(512);
        while out.len() < max_lines {
            buf.clear();
            let n = self.inner.read_until(b'\n', &mut buf).with_context(|| {
                format!("error reading {} after line {}", self.path.display(), self.line_no)
            })?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line_no += 1;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let line = match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            out.push((self.line_no, line));
        }
        if out.is_empty() && self.done {
            Ok(None)
        } else {
            Ok(Some(out))
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Parses numbered lines into JSON objects in parallel, keeping input order.
///
/// Returns `(line_number, object)` for good lines and a [`BadLine`] for each line that is not JSON or
/// not an object.
pub fn parse_batch(file: &Path, lines: &[(usize, String)]) -> (Vec<(usize, Map<String, Value>)>, Vec<BadLine>) {
    let parsed: Vec<std::result::Result<(usize, Map<String, Value>), BadLine>> = lines
        .par_iter()
        .with_min_len(256)
        .map(|(no, line)| parse_object(file, *no, line).map(|m| (*no, m)))
        .collect();
    let mut good = Vec::with_capacity(parsed.len());
    let mut bad = Vec::new();
    for p in parsed {
        match p {
            Ok(x) => good.push(x),
            Err(b) => bad.push(b),
        }
    }
    (good, bad)
}

/// Parses one line as a JSON object, or says (file, line, why) it is not one.
pub fn parse_object(file: &Path, line: usize, raw: &str) -> std::result::Result<Map<String, Value>, BadLine> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(BadLine {
            file: file.to_path_buf(),
            line,
            error: format!("expected a JSON object, found {}", json_kind(&other)),
        }),
        Err(e) => Err(BadLine { file: file.to_path_buf(), line, error: format!("invalid JSON: {e}") }),
    }
}

/// Name of a JSON value's kind, for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzip_with_line_numbers_and_reports_bad_lines() {
        let dir = std::env::temp_dir().join(format!("revmod-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let body = "{\"a\":1}\n\n{bad json\n[1,2]\r\n{\"a\":2}";
        let plain = dir.join("x.json");
        std::fs::write(&plain, body).unwrap();
        let gz = dir.join("x.json.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(body.as_bytes()).unwrap();
        enc.finish().unwrap();
        for p in [&plain, &gz] {
            let mut r = LineReader::open(p).unwrap();
            let mut all = Vec::new();
            while let Some(b) = r.next_batch(2).unwrap() {
                assert!(b.len() <= 2);
                all.extend(b);
            }
            let nums: Vec<usize> = all.iter().map(|x| x.0).collect();
            assert_eq!(nums, vec![1, 3, 4, 5], "blank line 2 skipped, numbering kept");
            let (good, bad) = parse_batch(p, &all);
            assert_eq!(good.iter().map(|g| g.0).collect::<Vec<_>>(), vec![1, 5]);
            assert_eq!(bad.len(), 2);
            assert_eq!(bad[0].line, 3);
            assert!(bad[0].to_string().contains(":3: invalid JSON"), "{}", bad[0]);
            assert!(bad[1].error.contains("expected a JSON object, found an array"));
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_file_error_names_it() {
        let e = LineReader::open("/nonexistent/review-X.json").err().unwrap();
        assert!(format!("{e:#}").contains("/nonexistent/review-X.json"));
    }
}
