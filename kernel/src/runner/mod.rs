//! `revmod run`: a headless notebook runner, papermill-like, for Rust notebooks on evcxr.
//!
//! Flow: read the notebook -> inject `-p` parameters after the `parameters` cell (checked before
//! anything runs) -> check the toolchain -> run code cells in order in one evcxr session with the
//! notebook's folder as working directory -> record outputs, execution counts and per-cell timing
//! -> stop at the first failing cell (compile error, panic, `Err` from `?`, process death,
//! timeout), mark it like papermill, and write the (partially) executed notebook and the HTML
//! report. The notebook is written after every cell, so nothing is lost if the runner dies.

pub mod html;
pub mod notebook;
pub mod outputs;
pub mod params;
pub mod proxy;
#[cfg(feature = "notebook")]
pub mod exec;
#[cfg(feature = "notebook")]
pub mod slots;

use anyhow::{bail, Context, Result};
use notebook::{cell_kind, cell_source, cell_tags, first_heading, CellKind, Notebook};
use outputs::CellRun;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What `revmod run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The notebook to execute.
    pub notebook: PathBuf,
    /// Where to write the executed notebook (default: `<stem>.executed.ipynb` beside the input).
    pub out: Option<PathBuf>,
    /// Where to write the HTML report, if wanted.
    pub html: Option<PathBuf>,
    /// `NAME=VALUE` overrides for the `parameters` cell.
    pub params: Vec<(String, String)>,
    /// Per-cell time limit (compile and run).
    pub cell_timeout: Option<Duration>,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// Root of evcxr's build slots (default `exec::default_build_root()`).
    pub build_root: Option<PathBuf>,
}

/// The failing cell of a run.
#[derive(Debug, Clone)]
pub struct CellFailure {
    /// 1-based index of the cell among all cells of the input notebook (as shown in JupyterLab).
    pub cell_number: usize,
    /// The cell's id.
    pub cell_id: String,
    /// Its execution count (`In [n]`).
    pub execution_count: u64,
    /// The nearest markdown heading above it.
    pub heading: Option<String>,
    /// papermill-style name and message.
    pub ename: String,
    /// The one-line message.
    pub evalue: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Code cells executed (including the failing one).
    pub executed: usize,
    /// Code cells in the notebook.
    pub code_cells: usize,
    /// The executed notebook's path.
    pub out: PathBuf,
    /// The HTML report's path, if written.
    pub html: Option<PathBuf>,
    /// Set when a cell failed.
    pub failure: Option<CellFailure>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

/// The default output path: `<stem>.executed.ipynb` next to the input.
pub fn default_out(notebook: &Path) -> PathBuf {
    let stem = notebook.file_stem().and_then(|s| s.to_str()).unwrap_or("notebook");
    notebook.with_file_name(format!("{stem}.executed.ipynb"))
}

/// Puts `-p` overrides into the notebook: removes any earlier `injected-parameters` cell and
/// inserts a new one right after the cell tagged `parameters`. Errors (no parameters cell, unknown
/// name, value of the wrong type) happen here, before anything runs.
pub fn inject_parameters(nb: &mut Notebook, overrides: &[(String, String)]) -> Result<()> {
    nb.cells_mut().retain(|c| !cell_tags(c).iter().any(|t| t == "injected-parameters"));
    if overrides.is_empty() {
        return Ok(());
    }
    let Some(idx) = nb.cells().iter().position(|c| {
        cell_kind(c) == CellKind::Code && cell_tags(c).iter().any(|t| t == "parameters")
    }) else {
        let names: Vec<_> = overrides.iter().map(|(n, _)| n.as_str()).collect();
        bail!(
            "parameters given ({}) but the notebook has no code cell tagged `parameters`",
            names.join(", ")
        );
    };
    let declared = params::parse_params(&cell_source(&nb.cells()[idx]));
    let source = params::injected_source(&declared, overrides)?;
    let cell = notebook::new_code_cell("injected-parameters", &source, &["injected-parameters"]);
    nb.cells_mut().insert(idx + 1, cell);
    let map: serde_json::Map<String, serde_json::Value> =
        overrides.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    papermill_meta(nb).insert("parameters".into(), json!(map));
    Ok(())
}

fn papermill_meta(nb: &mut Notebook) -> &mut serde_json::Map<String, serde_json::Value> {
    nb.metadata_mut()
        .entry("papermill")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("papermill metadata is an object")
}

/// Clears outputs and counts and marks every code cell `pending`, as papermill does.
fn reset_cells(nb: &mut Notebook) {
    for c in nb.cells_mut() {
        let is_code = c["cell_type"] == "code";
        let md = c["metadata"].as_object_mut().expect("metadata object");
        md.remove("execution");
        if is_code {
            c["metadata"]["papermill"] =
                json!({"start_time": null, "end_time": null, "duration": null, "status": "pending", "exception": false});
            c["outputs"] = json!([]);
            c["execution_count"] = json!(null);
        } else {
            md.remove("papermill");
        }
    }
    nb.cells_mut().retain(|c| !cell_tags(c).iter().any(|t| t == "papermill-error-cell-tag"));
}

/// Checks up front that the toolchain evcxr needs is there: cargo and rustc run, and the
/// rust-src component is installed (evcxr's type inference reads the standard library sources).
pub fn preflight() -> Result<()> {
    for tool in ["cargo", "rustc"] {
        let out = std::process::Command::new(tool).arg("--version").output();
        match out {
            Ok(o) if o.status.success() => {}
            _ => bail!(
                "`{tool}` was not found or does not run: install Rust with rustup \
                 (https://rustup.rs) and make sure `{tool}` is on PATH"
            ),
        }
    }
    let sysroot = std::process::Command::new("rustc").args(["--print", "sysroot"]).output()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let src = sysroot.join("lib/rustlib/src/rust/library");
    if !src.join("std").exists() {
        bail!(
            "the rust-src component is missing ({} not found); evcxr needs it: run \
             `rustup component add rust-src`",
            src.display()
        );
    }
    expose_toolchain_libs()
}

/// Puts the toolchain's own library folder (`rustc --print target-libdir`, where `libstd-*.so` lives) on
/// `LD_LIBRARY_PATH` for the processes evcxr starts. evcxr compiles cells with `-Cprefer-dynamic`, so each
/// cell's library needs the toolchain's `libstd`, and the run-path rustc writes into it is relative to cargo's
/// `deps` folder while evcxr loads the copy one folder up: outside `cargo run`/`cargo test` (which set this
/// variable themselves) the load fails with "dlopen failed" and the evaluation process exits with status 99.
/// Call it while the process is still single-threaded (at start-up).
pub fn expose_toolchain_libs() -> Result<()> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
        .context("running `rustc --print target-libdir`")?;
    let lib = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !lib.is_dir() {
        bail!("`rustc --print target-libdir` gave no library folder ({})", lib.display());
    }
    let mut paths = vec![lib.clone()];
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        paths.extend(std::env::split_paths(&old).filter(|p| p != &lib));
    }
    std::env::set_var("LD_LIBRARY_PATH", std::env::join_paths(paths)?);
    Ok(())
}

/// ISO 8601 UTC timestamp with microseconds (`2026-11-29T09:15:00.123456Z`), as papermill writes.
pub fn iso_time(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Executes a notebook; returns the summary (a failing cell is a summary with `failure`, not an
/// `Err`). `Err` means the run could not start or its files could not be written.
pub fn run(opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let cwd = std::env::current_dir()?;
    let input = cwd.join(&opts.notebook);
    let out = cwd.join(opts.out.clone().unwrap_or_else(|| default_out(&opts.notebook)));
    let html_path = opts.html.as_ref().map(|h| cwd.join(h));
    let mut nb = Notebook::read(&input)?;
    inject_parameters(&mut nb, &opts.params)?;
    reset_cells(&mut nb);
    let t0 = SystemTime::now();
    {
        let pm = papermill_meta(&mut nb);
        pm.insert("input_path".into(), json!(input.display().to_string()));
        pm.insert("output_path".into(), json!(out.display().to_string()));
        pm.insert("start_time".into(), json!(iso_time(t0)));
        pm.insert("end_time".into(), json!(null));
        pm.insert("duration".into(), json!(null));
        pm.insert("exception".into(), json!(null));
        pm.entry("parameters").or_insert_with(|| json!({}));
    }
    let title = input.file_stem().and_then(|s| s.to_str()).unwrap_or("notebook").to_owned();
    let notebook_dir = input.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.clone());
    preflight()?;
    let mut engine = Engine::start(&notebook_dir, opts)?;

    let code_cells = nb.cells().iter().filter(|c| cell_kind(c) == CellKind::Code).count();
    let total = nb.cells().len();
    let mut heading = None;
    let mut executed = 0usize;
    let mut count = 0u64;
    let mut failure = None;
    let mut idx = 0;
    while idx < nb.cells().len() {
        let cell = nb.cells()[idx].clone();
        idx += 1;
        match cell_kind(&cell) {
            CellKind::Markdown => {
                if let Some(h) = first_heading(&cell_source(&cell)) {
                    heading = Some(h);
                }
                continue;
            }
            CellKind::Raw => continue,
            CellKind::Code => {}
        }
        let source = cell_source(&cell);
        if source.trim().is_empty() {
            continue;
        }
        executed += 1;
        count += 1;
        if !opts.quiet {
            eprintln!(
                "[{executed}/{code_cells}] cell {idx}/{total}{}",
                heading.as_deref().map(|h| format!(": {h}")).unwrap_or_default()
            );
        }
        let start = SystemTime::now();
        let clock = Instant::now();
        let run = engine.run_cell(&source, opts.cell_timeout);
        let secs = clock.elapsed().as_secs_f64();
        let end = SystemTime::now();
        let outs = outputs::to_outputs(&run, count, idx);
        let failed = run.failure.is_some();
        {
            let c = &mut nb.cells_mut()[idx - 1];
            c["outputs"] = json!(outs);
            c["execution_count"] = json!(count);
            c["metadata"]["papermill"] = json!({
                "start_time": iso_time(start), "end_time": iso_time(end), "duration": secs,
                "status": if failed { "failed" } else { "completed" }, "exception": failed,
            });
            c["metadata"]["execution"] = json!({
                "iopub.execute_input": iso_time(start), "iopub.status.busy": iso_time(start),
                "iopub.status.idle": iso_time(end), "shell.execute_reply": iso_time(end),
            });
        }
        if !opts.quiet {
            let status = run.failure.as_ref().map(|f| format!("FAILED ({})", f.ename())).unwrap_or("ok".into());
            eprintln!("      {status} in {secs:.2} s (total {:.1} s)", started.elapsed().as_secs_f64());
        }
        if let Some(f) = run.failure {
            let cell_id = cell["id"].as_str().unwrap_or("").to_owned();
            mark_failed(&mut nb, idx - 1, count);
            failure = Some(CellFailure {
                cell_number: idx,
                cell_id,
                execution_count: count,
                heading: heading.clone(),
                ename: f.ename().into(),
                evalue: f.evalue(),
            });
            break;
        }
        nb.write(&out)?;
    }
    drop(engine);
    let t1 = SystemTime::now();
    {
        let pm = papermill_meta(&mut nb);
        pm.insert("end_time".into(), json!(iso_time(t1)));
        pm.insert("duration".into(), json!(started.elapsed().as_secs_f64()));
        pm.insert("exception".into(), json!(failure.is_some()));
    }
    nb.write(&out)?;
    if let Some(h) = &html_path {
        if let Some(dir) = h.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(h, html::render(&nb, &title))
            .with_context(|| format!("writing HTML report {}", h.display()))?;
    }
    Ok(RunSummary { executed, code_cells, out, html: html_path, failure, seconds: started.elapsed().as_secs_f64() })
}

/// Inserts papermill's error markers: a red banner cell at the top linking to the failing cell,
/// and an anchor cell right before it.
fn mark_failed(nb: &mut Notebook, cell_idx: usize, count: u64) {
    let style = "color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;";
    let anchor = notebook::new_markdown_cell(
        "papermill-error-cell",
        &format!("<span id=\"papermill-error-cell\" style=\"{style}\">Execution using papermill encountered an exception here and stopped:</span>"),
        &["papermill-error-cell-tag"],
    );
    nb.cells_mut().insert(cell_idx, anchor);
    let banner = notebook::new_markdown_cell(
        "papermill-error-banner",
        &format!("<span style=\"{style}\">An Exception was encountered at '<a href=\"#papermill-error-cell\">In [{count}]</a>'.</span>"),
        &["papermill-error-cell-tag"],
    );
    nb.cells_mut().insert(0, banner);
}

/// The cell executor: evcxr when built with the `notebook` feature.
struct Engine {
    #[cfg(feature = "notebook")]
    session: exec::Session,
}

impl Engine {
    #[allow(unused_variables)]
    fn start(notebook_dir: &Path, opts: &RunOptions) -> Result<Engine> {
        #[cfg(feature = "notebook")]
        {
            let root = opts.build_root.clone().unwrap_or_else(exec::default_build_root);
            let session = exec::Session::start(notebook_dir, &root)?;
            if !opts.quiet {
                eprintln!("started evcxr (build folder {})", session.build_dir.display());
            }
            Ok(Engine { session })
        }
        #[cfg(not(feature = "notebook"))]
        bail!(
            "this revmod binary was built without the `notebook` feature (the evcxr engine); \
             rebuild it with `cargo build --release -p revmod-kernel --features notebook`"
        )
    }

    #[allow(unused_variables)]
    fn run_cell(&mut self, source: &str, timeout: Option<Duration>) -> CellRun {
        #[cfg(feature = "notebook")]
        return self.session.run_cell(source, timeout);
        #[cfg(not(feature = "notebook"))]
        CellRun { failure: Some(outputs::Failure::Evcxr { message: "no engine".into() }), ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NB: &str = r#"{"nbformat":4,"nbformat_minor":5,"metadata":{},"cells":[
      {"cell_type":"code","id":"p","metadata":{"tags":["parameters"]},"execution_count":null,"outputs":[],
       "source":"let n: usize = 3;\nlet name = \"a\";"},
      {"cell_type":"code","id":"old","metadata":{"tags":["injected-parameters"]},"execution_count":null,"outputs":[],"source":"let n: usize = 9;"},
      {"cell_type":"code","id":"c","metadata":{},"execution_count":null,"outputs":[],"source":"n"}]}"#;

    #[test]
    fn injects_after_parameters_replacing_old_injection() {
        let mut nb = Notebook::parse(NB).unwrap();
        inject_parameters(&mut nb, &[("n".into(), "5".into())]).unwrap();
        let cells = nb.cells();
        assert_eq!(cells.len(), 3);
        assert_eq!(cells[1]["metadata"]["tags"][0], "injected-parameters");
        assert!(cell_source(&cells[1]).contains("let n: usize = 5;"));
        assert_eq!(nb.doc["metadata"]["papermill"]["parameters"]["n"], "5");

        let mut nb = Notebook::parse(NB).unwrap();
        let e = inject_parameters(&mut nb, &[("m".into(), "5".into())]).unwrap_err().to_string();
        assert!(e.contains("unknown parameter `m`"), "{e}");
    }

    #[test]
    fn no_parameters_cell_is_an_error() {
        let mut nb = Notebook::parse(r#"{"nbformat":4,"nbformat_minor":5,"metadata":{},"cells":[]}"#).unwrap();
        assert!(inject_parameters(&mut nb, &[("x".into(), "1".into())]).is_err());
        assert!(inject_parameters(&mut nb, &[]).is_ok());
    }

    #[test]
    fn iso_time_formats_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
        assert_eq!(iso_time(t), "2026-11-18T11:06:40.123456Z");
        assert_eq!(iso_time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
    }
}
