//! Progress of the long steps (labeling, scoring, model downloads) as one value the caller draws.
//!
//! The library never prints (the binary and the notebook own the terminal): a step counts its work in a
//! [`Progress`], and the progress is drawn only through a [`Draw`] the caller installed with
//! [`set_drawer`]. The CLI installs [`StderrDraw`] at start (`draw_on_stderr`), a notebook in its set-up
//! cell; with none installed, nothing is drawn. A step's own switch (`ScoreParams::progress`,
//! `HubOptions::progress`) turns its progress off with [`Progress::quiet`].

use std::io::{IsTerminal, Write};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What a [`Progress`] counts; decides how counts and rates read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Reviews labeled.
    Reviews,
    /// Table rows scored.
    Rows,
    /// Bytes downloaded (shown as kB/MB/GB).
    Bytes,
}

/// Draws progress for the caller: a terminal line, a log, a notebook widget.
pub trait Draw: Send + Sync {
    /// Shows `p`; `last` is true once, when the work is finished.
    fn draw(&self, p: &Progress, last: bool);
    /// The least time between two redraws of one progress (the final one always comes).
    fn interval(&self) -> Duration;
}

static DRAWER: RwLock<Option<Arc<dyn Draw>>> = RwLock::new(None);

/// Installs the drawer of every progress started from now on in this process (`None`: draw nothing).
pub fn set_drawer(drawer: Option<Arc<dyn Draw>>) {
    *DRAWER.write().unwrap_or_else(|e| e.into_inner()) = drawer;
}

/// Installs [`StderrDraw`]: what the CLI and the notebook show.
pub fn draw_on_stderr() {
    set_drawer(Some(Arc::new(StderrDraw::new())));
}

fn current_drawer() -> Option<Arc<dyn Draw>> {
    DRAWER.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Progress of one labeling run, scoring run or download: the counts, the rate and the ETA.
pub struct Progress {
    label: String,
    unit: Unit,
    total: Option<u64>,
    done: u64,
    resumed: u64,
    start: Instant,
    last: Option<Instant>,
    drawer: Option<Arc<dyn Draw>>,
}

impl Progress {
    /// Starts counting `total` items (`None`: unknown) of which `resumed` were already done (from a
    /// checkpoint or a partial download): the rate counts only items done in this session. Drawn by the
    /// drawer installed when it starts ([`set_drawer`]).
    pub fn new(label: &str, unit: Unit, total: Option<u64>, resumed: u64) -> Self {
        let start = Instant::now();
        // bytes: the first line after one redraw interval (small files show only their final line)
        let last = (unit == Unit::Bytes).then_some(start);
        Self { label: label.to_string(), unit, total, done: resumed, resumed, start, last, drawer: current_drawer() }
    }

    /// Draws nothing, whatever drawer is installed (a step's own "no progress" setting).
    pub fn quiet(mut self) -> Self {
        self.drawer = None;
        self
    }

    /// The label shown before the counts.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Items done, resumed ones included.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Items in all, when known.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Items per second in this session.
    pub fn rate(&self) -> f64 {
        let secs = self.start.elapsed().as_secs_f64();
        if secs <= 0.0 { 0.0 } else { (self.done - self.resumed) as f64 / secs }
    }

    /// The status line: count, percent, rate, elapsed time and ETA (count and rate alone when the total is
    /// unknown).
    pub fn line(&self) -> String {
        let rate = self.rate();
        let count = |n: u64| match self.unit {
            Unit::Bytes => fmt_bytes(n as f64),
            _ => n.to_string(),
        };
        let rate_s = match self.unit {
            Unit::Reviews => format!("{rate:.2} reviews/s"),
            Unit::Rows => format!("{rate:.0} rows/s"),
            Unit::Bytes => format!("{}/s", fmt_bytes(rate)),
        };
        let elapsed = fmt_secs(self.start.elapsed().as_secs_f64());
        match self.total {
            Some(total) => {
                let pct = if total == 0 { 100.0 } else { 100.0 * self.done as f64 / total as f64 };
                let eta = if rate > 0.0 { fmt_secs(total.saturating_sub(self.done) as f64 / rate) } else { "?".into() };
                format!("{}: {}/{} ({pct:5.1}%) {rate_s}, elapsed {elapsed}, ETA {eta}", self.label, count(self.done), count(total))
            }
            None => {
                let unit = if self.unit == Unit::Rows { " rows" } else { "" };
                format!("{}: {}{unit} {rate_s}, elapsed {elapsed}", self.label, count(self.done))
            }
        }
    }

    /// Records `k` more items done and redraws when the drawer's interval has passed.
    pub fn advance(&mut self, k: u64) {
        self.done += k;
        if let Some(t) = self.total {
            self.done = self.done.min(t);
        }
        let Some(d) = &self.drawer else { return };
        if self.last.is_none_or(|t| t.elapsed() >= d.interval()) {
            self.last = Some(Instant::now());
            d.draw(self, false);
        }
    }

    /// The final redraw (always drawn).
    pub fn finish(&mut self) {
        if let Some(d) = &self.drawer {
            d.draw(self, true);
        }
    }
}

/// The drawer of the CLI and the notebook: on a terminal the line is redrawn in place (5 times a second);
/// elsewhere (logs, notebooks) one line every 5 seconds and the final one. `REVMOD_NO_PROGRESS` set:
/// nothing.
pub struct StderrDraw {
    tty: bool,
    off: bool,
}

impl StderrDraw {
    /// A drawer for this process's stderr.
    pub fn new() -> Self {
        Self { tty: std::io::stderr().is_terminal(), off: std::env::var_os("REVMOD_NO_PROGRESS").is_some() }
    }
}

impl Default for StderrDraw {
    fn default() -> Self {
        Self::new()
    }
}

impl Draw for StderrDraw {
    fn draw(&self, p: &Progress, last: bool) {
        if self.off {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{}\x1b[K{}", p.line(), if last { "\n" } else { "" });
        } else {
            let _ = writeln!(err, "{}", p.line());
        }
        let _ = err.flush();
    }

    fn interval(&self) -> Duration {
        if self.tty { Duration::from_millis(200) } else { Duration::from_secs(5) }
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
    use std::sync::Mutex;

    #[test]
    fn lines_say_sizes_counts_and_rates() {
        let mut p = Progress::new("downloading model.safetensors", Unit::Bytes, Some(24_000_000_000), 1_500_000_000).quiet();
        p.done += 500_000_000;
        let line = p.line();
        assert!(line.starts_with("downloading model.safetensors: 2.0 GB/24.0 GB (  8.3%)"), "{line}");
        assert!(line.contains("B/s"), "{line}");
        let r = Progress::new("labeling", Unit::Reviews, Some(10), 0).line();
        assert!(r.contains("0/10") && r.contains("reviews/s"), "{r}");
        let s = Progress::new("scoring", Unit::Rows, None, 0).line();
        assert!(s.starts_with("scoring: 0 rows") && s.contains("rows/s"), "{s}");
    }

    /// A drawer that records what it was shown.
    struct Record(Mutex<Vec<(String, bool)>>);
    impl Draw for Record {
        fn draw(&self, p: &Progress, last: bool) {
            self.0.lock().unwrap().push((p.line(), last));
        }
        fn interval(&self) -> Duration {
            Duration::ZERO
        }
    }

    #[test]
    fn only_the_installed_drawer_draws_and_quiet_draws_nothing() {
        let rec = Arc::new(Record(Mutex::new(Vec::new())));
        let mut silent = Progress::new("before", Unit::Rows, Some(4), 0);
        set_drawer(Some(rec.clone()));
        let mut p = Progress::new("drawn", Unit::Rows, Some(4), 0);
        let mut q = Progress::new("quiet", Unit::Rows, Some(4), 0).quiet();
        set_drawer(None);
        for x in [&mut silent, &mut p, &mut q] {
            x.advance(2);
            x.advance(2);
            x.finish();
        }
        let seen = rec.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.iter().all(|(l, _)| l.starts_with("drawn: ")), "{seen:?}");
        assert!(seen[2].0.starts_with("drawn: 4/4 (100.0%)") && seen[2].1 && !seen[0].1, "{seen:?}");
    }
}
