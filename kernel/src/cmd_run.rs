//! `revmod run`: execute a notebook headless (papermill-like) with the evcxr engine.

use crate::runner::{self, params::split_assignment, RunOptions};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `revmod run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The notebook to execute (.ipynb).
    pub notebook: PathBuf,
    /// Where to write the executed notebook [default: <stem>.executed.ipynb beside the input].
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Also write a standalone HTML report of the executed notebook.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Override a parameter of the cell tagged `parameters`: NAME=VALUE (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Stop a cell (compile + run) after this many seconds.
    #[arg(long, value_name = "S")]
    pub cell_timeout: Option<f64>,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Root folder of evcxr's build slots [default: $REVMOD_EVCXR_DIR or ~/.cache/revmod/evcxr].
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
}

/// Runs the notebook; exits with status 1 and a one-line summary naming the cell when a cell fails.
pub fn run(a: RunArgs) -> Result<()> {
    let params = a.params.iter().map(|p| split_assignment(p)).collect::<Result<Vec<_>>>()?;
    let cell_timeout = match a.cell_timeout {
        Some(s) if !(s > 0.0 && s.is_finite()) => anyhow::bail!("--cell-timeout must be a positive number of seconds"),
        s => s.map(Duration::from_secs_f64),
    };
    let opts = RunOptions {
        notebook: a.notebook,
        out: a.out,
        html: a.html,
        params,
        cell_timeout,
        quiet: a.quiet,
        build_root: a.build_dir,
    };
    let s = runner::run(&opts)?;
    let html = s.html.as_ref().map(|h| format!(", report {}", h.display())).unwrap_or_default();
    match &s.failure {
        None => {
            eprintln!(
                "revmod run: ok: {}/{} code cells in {:.1} s; wrote {}{html}",
                s.executed, s.code_cells, s.seconds, s.out.display()
            );
            Ok(())
        }
        Some(f) => {
            eprintln!(
                "revmod run: FAILED at cell {} (In [{}], id {}{}): {}: {}; wrote the partial notebook {}{html}",
                f.cell_number,
                f.execution_count,
                f.cell_id,
                f.heading.as_deref().map(|h| format!(", under \"{h}\"")).unwrap_or_default(),
                f.ename,
                f.evalue,
                s.out.display()
            );
            std::process::exit(1);
        }
    }
}
