//! A progress line on stderr with rate and ETA (the seed's tqdm bar): redrawn in place on a terminal,
//! one line every few seconds otherwise (logs, notebooks).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Progress of one labeling run.
pub struct Progress {
    label: String,
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
            total,
            done: resumed,
            resumed,
            start: Instant::now(),
            last: None,
            tty: std::io::stderr().is_terminal(),
            enabled: std::env::var_os("REVMOD_NO_PROGRESS").is_none(),
        }
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
        format!(
            "{}: {}/{} ({pct:5.1}%) {rate:.2} reviews/s, elapsed {}, ETA {eta}",
            self.label,
            self.done,
            self.total,
            fmt_secs(self.start.elapsed().as_secs_f64())
        )
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

fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}
