//! A progress line on stderr with rate and ETA (the seed's tqdm bar): redrawn in place on a terminal,
//! one line every few seconds otherwise (logs, notebooks). Counts reviews (labeling) or bytes (model
//! downloads, `crate::llm::fetch`).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// What a [`Progress`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Reviews,
    Bytes,
}

/// Progress of one labeling run (or one download).
pub struct Progress {
    label: String,
    unit: Unit,
    total: usize,
    done: usize,
    resumed: usize,
    start: Instant,
    last: Option<Instant>,
    tty: bool,
    enabled: bool,
}

impl Progress {
    /// Starts a bar for `total` items of which `resumed` were already done (from a checkpoint): the
    /// rate counts only items done in this session.
    pub fn new(label: &str, total: usize, resumed: usize) -> Self {
        Self {
            label: label.to_string(),
            unit: Unit::Reviews,
            total,
            done: resumed,
            resumed,
            start: Instant::now(),
            last: None,
            tty: std::io::stderr().is_terminal(),
            enabled: std::env::var_os("REVMOD_NO_PROGRESS").is_none(),
        }
    }

    /// Counts bytes (`total` of which `resumed` were already on disk): sizes and rates print as kB/MB/GB.
    /// The first line comes after one redraw interval (small files print only their final line).
    pub fn bytes(label: &str, total: usize, resumed: usize) -> Self {
        Self { unit: Unit::Bytes, last: Some(Instant::now()), ..Self::new(label, total, resumed) }
    }

    /// Items per second in this session.
    pub fn rate(&self) -> f64 {
        let secs = self.start.elapsed().as_secs_f64();
        if secs <= 0.0 { 0.0 } else { (self.done - self.resumed) as f64 / secs }
    }

    /// The status line: count, percent, rate, ETA.
    pub fn line(&self) -> String {
        let pct = if self.total == 0 { 100.0 } else { 100.0 * self.done as f64 / self.total as f64 };
        let rate = self.rate();
        let eta = if rate > 0.0 { fmt_secs((self.total - self.done) as f64 / rate) } else { "?".into() };
        let (done, total, rate) = match self.unit {
            Unit::Reviews => (self.done.to_string(), self.total.to_string(), format!("{rate:.2} reviews/s")),
            Unit::Bytes => (fmt_bytes(self.done as f64), fmt_bytes(self.total as f64), format!("{}/s", fmt_bytes(rate))),
        };
        format!("{}: {done}/{total} ({pct:5.1}%) {rate}, elapsed {}, ETA {eta}", self.label, fmt_secs(self.start.elapsed().as_secs_f64()))
    }

    /// Records `k` more items done and redraws when due.
    pub fn advance(&mut self, k: usize) {
        self.done = (self.done + k).min(self.total);
        let every = if self.tty { Duration::from_millis(200) } else { Duration::from_secs(5) };
        if self.last.is_none_or(|t| t.elapsed() >= every) {
            self.draw(false);
        }
    }

    /// Final redraw (always printed) and newline.
    pub fn finish(&mut self) {
        self.draw(true);
    }

    fn draw(&mut self, last: bool) {
        self.last = Some(Instant::now());
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{}\x1b[K{}", self.line(), if last { "\n" } else { "" });
        } else {
            let _ = writeln!(err, "{}", self.line());
        }
        let _ = err.flush();
    }
}

fn fmt_bytes(b: f64) -> String {
    let (v, u) = if b >= 1e9 { (b / 1e9, "GB") } else if b >= 1e6 { (b / 1e6, "MB") } else if b >= 1e3 { (b / 1e3, "kB") } else { (b, "B") };
    if u == "B" { format!("{v:.0} B") } else { format!("{v:.1} {u}") }
}

fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_progress_prints_sizes() {
        let mut p = Progress::bytes("downloading model.safetensors", 24_000_000_000, 1_500_000_000);
        p.done += 500_000_000;
        let line = p.line();
        assert!(line.starts_with("downloading model.safetensors: 2.0 GB/24.0 GB (  8.3%)"), "{line}");
        assert!(line.contains("B/s"), "{line}");
        let r = Progress::new("labeling", 10, 0).line();
        assert!(r.contains("0/10") && r.contains("reviews/s"), "{r}");
    }
}
