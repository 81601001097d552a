//! The walkthrough (notebooks/review_moderation.ipynb) end to end, headless, on its defaults: the generated
//! sample data and the embedded Gemma-3 270M, as the README's main-job command runs it. Asserts every step's
//! output in the executed notebook, the artifacts under OUT_DIR, the notebook's validity (nbformat) and the
//! HTML report as a real browser renders it (Debian's chromium, headless: DOM and a screenshot).
//!
//! Run: `cargo test --release --workspace --test walkthrough` (after scripts/setup). Cold, the notebook's
//! `:dep` of revmod compiles polars and candle inside evcxr once, in a build slot under `EVCXR_TMPDIR` that
//! later runs reuse (or copy, see kernel/src/runner/slots.rs).

use revmod::polars::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::{assert_valid, python, text};

const BIN: &str = env!("CARGO_BIN_EXE_revmod");

fn notebook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks/review_moderation.ipynb")
}

/// Everything a code cell showed (streams, text/plain, text/html, SVG) as one string.
fn shown(cell: &Value) -> String {
    let mut s = String::new();
    for o in cell["outputs"].as_array().into_iter().flatten() {
        s.push_str(&text(&o["text"]));
        for mime in ["text/plain", "text/html", "image/svg+xml"] {
            s.push_str(&text(&o["data"][mime]));
        }
        s.push('\n');
    }
    s
}

/// The code cells of each step: `steps[n]` holds the outputs of the code cells after the markdown heading
/// `## Step n:` up to the next heading.
fn steps(nb: &Value) -> Vec<String> {
    let mut out = vec![String::new(); 20];
    let mut cur = 0usize;
    for c in nb["cells"].as_array().unwrap() {
        if c["cell_type"] == "markdown" {
            let src = text(&c["source"]);
            if let Some(rest) = src.trim_start().strip_prefix("## Step ") {
                cur = rest.split(':').next().unwrap().trim().parse().unwrap();
            }
        } else if c["cell_type"] == "code" {
            out[cur].push_str(&shown(c));
        }
    }
    out
}

fn rows(path: &Path) -> usize {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(f).finish().unwrap().height()
}

/// One walkthrough run at a time: each needs an evcxr build slot, and cold, a second one would start
/// before the first has a warm slot to copy and compile the support crate's dependencies again in parallel.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Walk {
    dir: PathBuf,
    out: PathBuf,
    nb_out: PathBuf,
    html: PathBuf,
    nb: Value,
    steps: Vec<String>,
}

/// Runs the walkthrough headless as the README's main job does, with `-p` overrides, from an unrelated folder
/// and without cargo's library path (as a user's shell runs it).
fn walk(name: &str, params: &[&str]) -> Walk {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("walkthrough").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let (nb_out, html) = (dir.join("executed.ipynb"), dir.join("report.html"));
    let mut cmd = Command::new(BIN);
    cmd.current_dir(&dir).env_remove("LD_LIBRARY_PATH").arg("run").arg(notebook());
    cmd.arg("--out").arg(&nb_out).arg("--html").arg(&html).args(["--cell-timeout", "3600"]);
    cmd.arg("-p").arg(format!("OUT_DIR={}", out.display()));
    for p in params {
        cmd.args(["-p", p]);
    }
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stderr}");
    assert!(o.status.success(), "the walkthrough failed:\n{stderr}");
    let nb: Value = serde_json::from_str(&std::fs::read_to_string(&nb_out).unwrap()).unwrap();
    let steps = steps(&nb);
    Walk { dir, out, nb_out, html, nb, steps }
}

impl Walk {
    fn has(&self, n: usize, what: &[&str]) {
        let s = &self.steps[n];
        for w in what {
            assert!(s.contains(w), "step {n} shows no {w:?}:\n{}", &s[..s.len().min(3000)]);
        }
    }
}

/// `-p BACKEND=rules`: the keyword labeler finds every phenomenon the sample data plants, so all five labels
/// get positives and five logistic regressions are fitted (the default 270M base model finds few; see below).
#[test]
fn walkthrough_with_the_rules_backend_trains_five_labels() {
    let w = walk("rules", &["BACKEND=rules", "N_LABEL=600", "PART_SIZE=200"]);
    assert!(!w.steps[10].contains("no model was fitted"), "{}", w.steps[10]);
    for l in ["relevant", "ads", "irrelevant", "non_visit", "spam"] {
        let svg = w.out.join(format!("models/baseline_tfidf_lr/pr_curves/pr_{l}.svg"));
        assert!(svg.is_file(), "no PR curve {}", svg.display());
    }
}

/// The defaults, as the README's main job runs them: generated sample data, the embedded Gemma-3 270M.
#[test]
fn walkthrough_runs_end_to_end_on_the_defaults() {
    let w = walk("defaults", &[]);
    let Walk { dir, out, nb_out, html, nb, .. } = &w;
    // the 270M base model finds few violations in 60 reviews: labels without positives are said, not hidden
    if w.steps[10].contains("no model was fitted") {
        let said = w.steps[12].contains("kept previous threshold") || w.steps[12].contains("threshold set to the fallback");
        assert!(said, "the calibration guard must explain: {}", w.steps[12]);
    }
    // the executed notebook is valid nbformat 4.5
    assert_valid(nb_out);
    // every code cell ran (execution counts) and none failed
    for c in nb["cells"].as_array().unwrap().iter().filter(|c| c["cell_type"] == "code") {
        assert!(c["execution_count"].is_u64(), "a cell did not run: {}", text(&c["source"]));
        assert!(c["outputs"].as_array().unwrap().iter().all(|o| o["output_type"] != "error"));
    }
    w.has(2, &["OUT_DIR", "<table"]);
    // step 8b (its outputs count as step 8's): the labels measured against the generator's truth
    w.has(8, &["labels of local-gemma", "mode=fewshot-loglik", "truth-Vermont.csv", "precision", "F1"]);
    w.has(3, &["<table", "reviewer_name", "business_name", "malformed"]);
    w.has(5, &["labeler"]);
    w.has(6, &["parse_output", "is_advertisement"]);
    w.has(7, &["<table", "is_relevant_overall", "rationale"]);
    w.has(8, &["<table", "is_spam", "parse_success"]);
    w.has(9, &["<table", "train", "val", "test"]);
    w.has(10, &["<table", "relevant", "ads", "irrelevant", "non_visit", "spam", "threshold", "f1"]);
    w.has(11, &["<table"]);
    w.has(12, &["<svg", "threshold"]);
    w.has(13, &["p_ads", "p_spam"]);
    w.has(15, &["<table", "<svg"]);
    for n in 16..=19 {
        w.has(n, &["<table"]);
    }

    // the artifacts, where the seed wrote them
    let model_dir = out.join("models/baseline_tfidf_lr");
    for f in ["thresholds.json", "metrics.csv"] {
        assert!(model_dir.join(f).is_file(), "missing {f}");
    }
    let svgs = std::fs::read_dir(model_dir.join("pr_curves")).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "svg")).count();
    assert!(svgs >= 1, "no PR-curve SVG saved in {}", model_dir.display());
    let thresholds: Value = serde_json::from_str(&std::fs::read_to_string(model_dir.join("thresholds.json")).unwrap()).unwrap();
    for l in ["relevant", "ads", "irrelevant", "non_visit", "spam"] {
        assert!(thresholds.to_string().contains(l), "thresholds.json lacks {l}: {thresholds}");
    }
    let misclf = std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("misclf_")).count();
    assert!(misclf > 0, "no misclf_*.csv in {}", out.display());
    assert!(out.join("labeled_reviews_ml_ready.parquet").is_file());
    // scored rows = loaded rows
    let loaded = revmod::data::load_df(out.join("data/review-Vermont.json"), out.join("data/meta-Vermont.json")).unwrap();
    assert_eq!(rows(&out.join("scored_reviews.parquet")), loaded.df.height());

    // the HTML report in a real browser: 19 step headings, an svg in each chart cell, no error output
    let dom = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is missing: run scripts/setup");
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let headings = (1..=19).filter(|n| dom.contains(&format!("<h2>Step {n}:"))).count();
    assert_eq!(headings, 19, "step headings in the rendered report");
    assert!(!dom.contains("class=\"output error\""), "an error output in the report");
    let chart_cells: Vec<&str> = dom.split("<div class=\"cell ").filter(|c| c.starts_with("code")).collect();
    let with_svg = chart_cells.iter().filter(|c| c.contains("<svg")).count();
    assert!(with_svg >= 2, "PR curves and the distribution chart: {with_svg} code cells with an svg");
    let shot = dir.join("report.png");
    let o = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,20000"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 50_000, "screenshot of {} bytes looks blank", png.len());
    eprintln!("walkthrough: report {}, screenshot {}", html.display(), shot.display());
}

/// The committed notebook is what its generator writes (edit notebooks/build_notebook.py, then run it).
#[test]
fn notebook_matches_its_generator() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks/build_notebook.py");
    let o = Command::new(python()).arg(&script).arg("--check").output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let nb: Value = serde_json::from_str(&std::fs::read_to_string(notebook()).unwrap()).unwrap();
    let headings = nb["cells"].as_array().unwrap().iter().filter(|c| c["cell_type"] == "markdown" && text(&c["source"]).trim_start().starts_with("## Step ")).count();
    assert_eq!(headings, 19);
}
