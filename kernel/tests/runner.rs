//! `revmod run` end to end on fixture notebooks (kernel/tests/fixtures): exit status, the failing
//! cell named in the summary, the written notebook (validated by the nbformat package) and the
//! HTML report. Needs the `notebook` feature (evcxr) and a Rust toolchain with rust-src.
//!
//! Run: `cargo test --release --workspace --test runner`
//! The support-crate notebook `:dep`s revmod: cold, that compiles polars inside evcxr (~15 min) once. The
//! runs use the shared build root (`EVCXR_TMPDIR`, as a user's runs do), whose locked slots start as copies
//! of a warm one (the kernel's or the walkthrough's), so a warm cache compiles nothing again.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::{assert_valid, text};

const BIN: &str = env!("CARGO_BIN_EXE_revmod");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn work_dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runner").join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Ran {
    code: Option<i32>,
    stderr: String,
    nb: Value,
    html: String,
    out: PathBuf,
}

/// Runs `revmod run` from an unrelated working directory (the test's folder), so the runner must
/// switch to the notebook's folder itself.
fn run(test: &str, nb: &str, extra: &[&str]) -> Ran {
    let dir = work_dir(test);
    let out = dir.join("out.ipynb");
    let html = dir.join("report.html");
    let o = Command::new(BIN)
        .current_dir(&dir)
        // cargo test puts the toolchain's libstd on this path; a user's shell does not
        .env_remove("LD_LIBRARY_PATH")
        .arg("run")
        .arg(fixture(nb))
        .args(["--out", "out.ipynb", "--html", "report.html"])
        .args(extra)
        .output()
        .expect("revmod runs");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let nb: Value = serde_json::from_str(
        &std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("no notebook written ({e}); stderr:\n{stderr}")),
    )
    .unwrap();
    let html = std::fs::read_to_string(&html).unwrap_or_default();
    Ran { code: o.status.code(), stderr, nb, html, out }
}

fn code_cells(nb: &Value) -> Vec<&Value> {
    nb["cells"].as_array().unwrap().iter().filter(|c| c["cell_type"] == "code").collect()
}

fn outputs(c: &Value) -> &Vec<Value> {
    c["outputs"].as_array().unwrap()
}

fn error_of(nb: &Value) -> (usize, Value) {
    let cells = code_cells(nb);
    let i = cells
        .iter()
        .position(|c| outputs(c).iter().any(|o| o["output_type"] == "error"))
        .expect("an error output");
    let e = outputs(cells[i]).iter().find(|o| o["output_type"] == "error").unwrap().clone();
    (i, e)
}

/// Runs fixture `name.ipynb`, which must fail at code cell `failing_code_idx` with `ename`; returns the run and
/// its error output.
fn run_failing(name: &str, failing_code_idx: usize, ename: &str) -> (Ran, Value) {
    let r = run(name, &format!("{name}.ipynb"), &[]);
    assert_papermill_failure(&r, failing_code_idx, ename);
    let (_, e) = error_of(&r.nb);
    (r, e)
}

/// The failing cell is marked like papermill: status failed, a banner at the top, an anchor before it,
/// later cells pending and not executed.
fn assert_papermill_failure(r: &Ran, failing_code_idx: usize, ename: &str) {
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    let (i, e) = error_of(&r.nb);
    assert_eq!(i, failing_code_idx, "{:#?}", r.nb);
    assert_eq!(e["ename"], ename, "{e:#}");
    let cells = code_cells(&r.nb);
    assert_eq!(cells[i]["metadata"]["papermill"]["status"], "failed");
    assert_eq!(cells[i]["metadata"]["papermill"]["exception"], true);
    for later in &cells[i + 1..] {
        assert_eq!(later["metadata"]["papermill"]["status"], "pending");
        assert!(later["execution_count"].is_null() && outputs(later).is_empty());
    }
    let all = r.nb["cells"].as_array().unwrap();
    assert!(text(&all[0]["source"]).contains("An Exception was encountered"));
    assert_eq!(r.nb["metadata"]["papermill"]["exception"], true);
    let summary = r.stderr.lines().last().unwrap_or("");
    assert!(summary.contains("FAILED at cell") && summary.contains(ename), "summary: {summary}");
    assert!(r.html.contains(ename), "HTML report shows the error");
    assert_valid(&r.out);
}

#[test]
fn pass_records_streams_results_counts_timing_and_cwd() {
    let r = run("pass", "pass.ipynb", &[]);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let cells = code_cells(&r.nb);
    // Four code cells with source (the empty one is skipped, like nbclient).
    let counts: Vec<_> = cells.iter().map(|c| c["execution_count"].as_u64()).collect();
    assert_eq!(counts, [Some(1), Some(2), Some(3), Some(4), None]);
    let streams = outputs(cells[1]);
    let stdout = streams.iter().find(|o| o["name"] == "stdout").expect("stdout stream");
    assert_eq!(text(&stdout["text"]), "x = 40\n");
    let stderr = streams.iter().find(|o| o["name"] == "stderr").expect("stderr stream");
    assert_eq!(text(&stderr["text"]), "a line on stderr\n");
    let res = &outputs(cells[2])[0];
    assert_eq!(res["output_type"], "execute_result");
    assert_eq!(res["execution_count"], 3);
    assert_eq!(text(&res["data"]["text/plain"]), "42");
    let hello = outputs(cells[3]).iter().find(|o| o["name"] == "stdout").unwrap();
    assert_eq!(text(&hello["text"]), "hello from the fixtures folder\n");
    for c in &cells[..4] {
        let pm = &c["metadata"]["papermill"];
        assert_eq!(pm["status"], "completed");
        assert!(pm["duration"].as_f64().unwrap() > 0.0);
        assert!(pm["start_time"].as_str().unwrap().ends_with('Z'));
        assert!(c["metadata"]["execution"]["shell.execute_reply"].is_string());
    }
    assert_eq!(r.nb["metadata"]["papermill"]["exception"], false);
    assert!(r.stderr.contains("[1/5] cell 2/8: Pass"), "progress lines: {}", r.stderr);
    assert!(r.stderr.contains(": Working directory is the notebook's folder"));
    assert!(r.html.contains("<h1>Pass</h1>") && r.html.contains("x = 40") && r.html.contains("In [3]:"));
    assert_valid(&r.out);
}

#[test]
fn quiet_prints_only_the_summary() {
    let r = run("quiet", "pass.ipynb", &["--quiet"]);
    assert_eq!(r.code, Some(0));
    assert!(!r.stderr.contains("[1/5]"), "{}", r.stderr);
    assert!(r.stderr.contains("revmod run: ok: 4/5 code cells"), "{}", r.stderr);
}

#[test]
fn compile_error_stops_at_the_cell() {
    let (r, e) = run_failing("compile_error", 1, "CompilationError");
    let tb = e["traceback"].to_string();
    assert!(tb.contains("mismatched types") || tb.contains("E0308"), "{tb}");
    assert!(r.stderr.contains("FAILED at cell 3 (In [2]"), "{}", r.stderr);
}

#[test]
fn panic_is_a_failure_with_its_message() {
    let (r, e) = run_failing("panic", 1, "Panic");
    assert!(e["traceback"].to_string().contains("index 7 is out of range"), "{e:#}");
    let out = outputs(code_cells(&r.nb)[1]);
    assert!(out.iter().any(|o| text(&o["text"]).contains("before the panic")));
}

#[test]
fn err_from_question_mark_is_a_failure() {
    let (r, e) = run_failing("err", 2, "Err");
    assert!(e["evalue"].as_str().unwrap().contains("invalid digit"), "{e:#}");
    let ok = outputs(code_cells(&r.nb)[1]);
    assert!(ok.iter().any(|o| text(&o["text"]).contains("n = 12")));
}

#[test]
fn abort_is_process_death() {
    let (_, e) = run_failing("abort", 1, "ProcessDied");
    assert!(e["evalue"].as_str().unwrap().contains("SIGABRT"), "{e:#}");
}

#[test]
fn sigkill_like_oom_is_process_death() {
    let (_, e) = run_failing("killed", 0, "ProcessDied");
    assert!(e["evalue"].as_str().unwrap().contains("out of memory"), "{e:#}");
}

#[test]
fn timeout_kills_the_cell() {
    let t = std::time::Instant::now();
    let r = run("timeout", "timeout.ipynb", &["--cell-timeout", "20"]);
    assert_papermill_failure(&r, 1, "CellTimeoutError");
    assert!(t.elapsed().as_secs() < 300, "the 600 s sleep was not cut short");
}

#[test]
fn parameters_are_injected_typed() {
    let r = run(
        "parameters",
        "parameters.ipynb",
        &["-p", "n=5", "-p", "name=Ann \"A\"", "-p", "out=/tmp/x y.txt", "-p", "scale=2", "-p", "verbose=true"],
    );
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let cells = code_cells(&r.nb);
    assert_eq!(cells[1]["metadata"]["tags"][0], "injected-parameters");
    let src = text(&cells[1]["source"]);
    assert!(src.contains("let n: usize = 5;") && src.contains(r#"let name = "Ann \"A\"";"#), "{src}");
    let printed = text(&outputs(cells[2])[0]["text"]);
    assert_eq!(printed, "n=5 name=Ann \"A\" out=/tmp/x y.txt scale=2.0 verbose=true\n");
    assert_eq!(text(&outputs(cells[3])[0]["data"]["text/plain"]), "10");
    assert_eq!(r.nb["metadata"]["papermill"]["parameters"]["n"], "5");
    assert_valid(&r.out);
}

#[test]
fn unknown_or_ill_typed_parameters_fail_before_running() {
    let dir = work_dir("bad_params");
    for (arg, want) in [("nope=1", "unknown parameter `nope`"), ("n=-2", "non-negative integer")] {
        let o = Command::new(BIN)
            .current_dir(&dir)
            .args(["run", fixture("parameters.ipynb").to_str().unwrap(), "--out", "o.ipynb", "-p", arg])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1));
        assert!(err.contains(want), "{err}");
        assert!(!err.contains("starting evcxr"), "nothing may run: {err}");
        assert!(!dir.join("o.ipynb").exists());
    }
}

#[test]
fn several_rich_outputs_in_one_cell() {
    let r = run("outputs", "outputs.ipynb", &[]);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let out = outputs(code_cells(&r.nb)[1]);
    let kinds: Vec<_> = out.iter().map(|o| o["output_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["display_data", "display_data", "display_data", "stream", "execute_result"], "{out:#?}");
    assert!(text(&out[0]["data"]["text/html"]).contains("<td>spam</td>"));
    assert!(text(&out[1]["data"]["image/svg+xml"]).starts_with("<svg"));
    assert!(text(&out[2]["data"]["image/png"]).starts_with("iVBORw0KGgo"));
    assert_eq!(text(&out[4]["data"]["text/html"]), "<b>badge 7</b>");
    assert!(r.html.contains("<td>spam</td>") && r.html.contains("<svg") && r.html.contains("data:image/png;base64,"));
    assert!(r.html.contains("<b>badge 7</b>"));
    assert_valid(&r.out);
}

/// The walkthrough's pattern: `:dep` the support crate by relative path, show a DataFrame table and
/// an SVG chart. Cold, this compiles polars inside evcxr: opt-in.
#[test]
fn support_crate_tables_and_charts() {
    let r = run("support_crate", "support_crate.ipynb", &["--cell-timeout", "3600"]);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let cells = code_cells(&r.nb);
    let html_of = |i: usize| outputs(cells[i]).iter().map(|o| text(&o["data"]["text/html"])).collect::<String>();
    assert!(html_of(2).contains("<table"), "DataFrame table: {:#?}", cells[2]);
    assert!(outputs(cells[3]).iter().any(|o| text(&o["data"]["image/svg+xml"]).contains("<svg")
        || text(&o["data"]["text/html"]).contains("<svg")));
    let many = html_of(4);
    assert!(many.contains("<table") && many.contains("<svg"), "Many: {many}");
    assert!(r.html.contains("<table") && r.html.contains("<svg"));
    assert_valid(&r.out);
}
