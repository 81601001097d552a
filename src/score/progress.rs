//! Progress reporting for long scoring runs: an indicatif bar on a terminal, a log line every ~10%
//! (or every `log_every` rows when the total is unknown) elsewhere (notebooks, CI logs).

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Rows-processed progress: a bar when stderr is a terminal, periodic `eprintln!` lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: Option<u64>,
    done: u64,
    next_log: u64,
    last_logged: u64,
    log_every: u64,
    start: Instant,
    what: String,
}

impl Progress {
    /// A progress reporter for `total` rows (None: unknown); `enabled: false` reports nothing.
    pub fn new(what: &str, total: Option<u64>, enabled: bool) -> Self {
        let bar = if enabled {
            let b = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let tpl = if total.is_some() {
                "{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})"
            } else {
                "{msg} {spinner} {pos} rows ({per_sec})"
            };
            if let Ok(style) = ProgressStyle::with_template(tpl) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(what.to_string());
            Some(b)
        } else {
            None
        };
        let log_every = match total {
            Some(n) => (n / 10).max(1),
            None => 100_000,
        };
        Self { bar, total, done: 0, next_log: log_every, last_logged: 0, log_every, start: Instant::now(), what: what.into() }
    }

    fn logs_lines(&self) -> bool {
        self.bar.as_ref().is_some_and(|b| b.is_hidden())
    }

    /// Adds `rows` processed rows.
    pub fn inc(&mut self, rows: u64) {
        self.done += rows;
        if let Some(b) = &self.bar {
            b.inc(rows);
        }
        if self.logs_lines() && self.done >= self.next_log {
            while self.next_log <= self.done {
                self.next_log += self.log_every;
            }
            eprintln!("{}", self.line());
            self.last_logged = self.done;
        }
    }

    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        match self.total {
            Some(n) => format!(
                "{}: {}/{} rows ({:.0}%), {:.0} rows/s, {:.1}s",
                self.what,
                self.done,
                n,
                100.0 * self.done as f64 / n.max(1) as f64,
                rate,
                secs
            ),
            None => format!("{}: {} rows, {:.0} rows/s, {:.1}s", self.what, self.done, rate, secs),
        }
    }

    /// Ends the bar (or prints the final log line).
    pub fn finish(&mut self) {
        if let Some(b) = &self.bar {
            if b.is_hidden() {
                if self.last_logged != self.done {
                    eprintln!("{}", self.line());
                    self.last_logged = self.done;
                }
            } else {
                b.finish();
            }
        }
    }
}
