//! Checkpointed labeling (cell 8): kill -9 at random instants loses and duplicates nothing; a changed
//! sample, prompt or labeler is detected instead of mixed in; the seed's layout and columns.
//!
//! The kill test re-runs this test binary as a child process (`child_process_entry` below: ignored in
//! normal runs, run explicitly with `--ignored` and REVMOD_CKPT_CHILD set), kills it with SIGKILL after a
//! random delay, several times per trial, then finishes the run and compares the result with an
//! uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use revmod::data::{load_df, write_sample, SampleParams};
use revmod::label::ckpt::{CkptError, CkptField};
use revmod::label::{
    label_preview, label_with_ckpt, CkptOptions, CkptRun, LabelBackend, Labeler, ModeratorPrompt, RawOutput,
    ReviewInput, RulesBackend,
};
use revmod::moderation::LABEL_COLUMNS;

const UTAH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/google-local-utah");

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("revmod-label-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Generated Google Local-shaped data (ads, rants, spam, junk included), written once per process.
fn sample_files(dir: &Path, reviews: usize) -> (PathBuf, PathBuf) {
    let p = SampleParams { reviews, ..Default::default() };
    write_sample(dir, &p).unwrap();
    (dir.join("review-Vermont.json"), dir.join("meta-Vermont.json"))
}

/// The rules backend, slowed down a little and in small batches so kills land inside labeling as well
/// as inside part writes.
struct SlowRules(RulesBackend, Duration);

impl LabelBackend for SlowRules {
    fn backend_name(&self) -> String {
        self.0.backend_name()
    }
    fn model_id(&self) -> String {
        self.0.model_id()
    }
    fn preferred_batch(&self) -> usize {
        3
    }
    fn answer(&mut self, p: &ModeratorPrompt, r: &[ReviewInput]) -> Vec<anyhow::Result<RawOutput>> {
        std::thread::sleep(self.1);
        self.0.answer(p, r)
    }
}

fn slow_labeler() -> Labeler {
    Labeler::new(Box::new(SlowRules(RulesBackend::new(), Duration::from_micros(300))))
}

const N: usize = 240;
const PART: usize = 7;

fn run_ckpt(reviews: &Path, meta: &Path, ckpt: &Path) -> anyhow::Result<revmod::label::CkptRun> {
    let df = load_df(reviews, meta)?.df;
    label_with_ckpt(&df, N, PART, ckpt, &mut slow_labeler(), &CkptOptions::default())
}

/// Child side of the kill test (a no-op in a normal test run).
/// Not a test: the child process of the kill test, which runs it explicitly (`--ignored --exact`). Ignored so
/// that a normal run does not count it as a passing test; run alone it fails, saying what it is.
#[test]
#[ignore = "the kill test's child process, run by kill_9_at_random_instants_loses_and_duplicates_nothing"]
fn child_process_entry() {
    let ckpt = std::env::var("REVMOD_CKPT_CHILD")
        .expect("child_process_entry is the kill test's child process: run kill_9_at_random_instants_loses_and_duplicates_nothing");
    let reviews = PathBuf::from(std::env::var("REVMOD_CKPT_REVIEWS").unwrap());
    let meta = PathBuf::from(std::env::var("REVMOD_CKPT_META").unwrap());
    run_ckpt(&reviews, &meta, Path::new(&ckpt)).unwrap();
}

fn spawn_child(ckpt: &Path, reviews: &Path, meta: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_entry", "--ignored", "--test-threads", "1", "--nocapture"])
        .env("REVMOD_CKPT_CHILD", ckpt)
        .env("REVMOD_CKPT_REVIEWS", reviews)
        .env("REVMOD_CKPT_META", meta)
        .env("REVMOD_NO_PROGRESS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn kill_9_at_random_instants_loses_and_duplicates_nothing() {
    let root = tmp_dir("kill");
    let (reviews, meta) = sample_files(&root, 1200);
    // reference: one uninterrupted run in a child process (also measures how long a whole run takes)
    let t0 = Instant::now();
    let status = spawn_child(&root.join("ref/labels_ckpt"), &reviews, &meta).wait().unwrap();
    assert!(status.success());
    let full = t0.elapsed();
    let reference = revmod::label::ckpt::read_parquet(&root.join(format!("ref/labeled_preview_{N}.parquet"))).unwrap().0;
    assert_eq!(reference.height(), N);

    let trials = 30;
    let mut rng = revmod::rng::SplitMix64(0x9e37_79b9_7f4a_7c15);
    let mut kills = 0;
    let mut parts_seen_at_kill = Vec::new();
    for trial in 0..trials {
        let ckpt = root.join(format!("t{trial}/labels_ckpt"));
        for _ in 0..(1 + rng.next_u64() % 3) {
            let delay = Duration::from_micros(rng.next_u64() % (full.as_micros() as u64 + 1));
            let mut child = spawn_child(&ckpt, &reviews, &meta);
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
            child.wait().unwrap();
            let parts = std::fs::read_dir(&ckpt).map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("part_")).count()).unwrap_or(0);
            parts_seen_at_kill.push(parts);
        }
        // resume to the end in this process
        let run = run_ckpt(&reviews, &meta, &ckpt).unwrap();
        let df = &run.labeled;
        assert_eq!(df.height(), N, "trial {trial}: rows");
        let idx: Vec<u64> = df.column("orig_index").unwrap().u64().unwrap().into_no_null_iter().collect();
        let mut uniq = idx.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), N, "trial {trial}: duplicated rows");
        assert!(df.equals_missing(&reference), "trial {trial}: result differs from the uninterrupted run");
        let final_file = revmod::label::ckpt::read_parquet(&run.parquet_path).unwrap().0;
        assert!(final_file.equals_missing(&reference));
        let leftovers: Vec<String> = std::fs::read_dir(&ckpt).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".tmp")).collect();
        assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    }
    let n_parts = N.div_ceil(PART);
    let mid = parts_seen_at_kill.iter().filter(|&&p| p > 0 && p < n_parts).count();
    eprintln!("{kills} kills over {trials} trials; parts present at kill time: {parts_seen_at_kill:?}");
    assert!(kills >= trials / 2, "too few kills landed ({kills}): the runs end before the kill");
    assert!(mid >= 5, "too few kills landed mid-run ({mid})");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn layout_columns_and_resume_without_relabeling() {
    let root = tmp_dir("layout");
    let df = load_df(format!("{UTAH}/review-Utah.sample.json"), format!("{UTAH}/meta-Utah.partial.json")).unwrap().df;
    let ckpt = root.join("labels_ckpt_1k");
    let run = label_with_ckpt(&df, 150, 40, &ckpt, &mut Labeler::rules(), &CkptOptions::default()).unwrap();
    let n = run.labeled.height();
    assert_eq!(n, 150.min(df.height()));
    for k in 0..4 {
        assert!(ckpt.join(format!("part_{k:04}.parquet")).exists());
    }
    assert!(!ckpt.join("part_0004.parquet").exists());
    let manifest = revmod::label::ckpt::read_parquet(&ckpt.join("manifest.parquet")).unwrap().0;
    let names: Vec<String> = manifest.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["orig_index", "text", "business_name", "category"]);
    assert!(root.join(format!("labeled_preview_{n}.parquet")).exists());
    let csv = std::fs::read_to_string(root.join(format!("labeled_preview_{n}.csv"))).unwrap();
    let header = csv.lines().next().unwrap();
    for c in LABEL_COLUMNS.iter().chain(&["rationale", "gemma_raw", "parse_success", "backend", "model"]) {
        assert!(header.split(',').any(|h| h == *c), "csv header lacks {c}: {header}");
    }
    let backend = run.labeled.column("backend").unwrap().str().unwrap().get(0).unwrap().to_string();
    assert_eq!(backend, "rules-only");
    assert_eq!(run.summary.rows, n);
    // the real data has null texts: the guard labels them spam without a call
    assert!(run.summary.guarded > 0 && run.summary.positives[revmod::moderation::Label::Spam] >= run.summary.guarded);
    // second run: everything resumed, nothing relabeled, same table
    let again = label_with_ckpt(&df, 150, 40, &ckpt, &mut Labeler::rules(), &CkptOptions::default()).unwrap();
    assert_eq!((again.parts_resumed, again.parts_written), (4, 0));
    assert!(again.labeled.equals_missing(&run.labeled));
    // a deleted part is relabeled alone
    std::fs::remove_file(ckpt.join("part_0002.parquet")).unwrap();
    let third = label_with_ckpt(&df, 150, 40, &ckpt, &mut Labeler::rules(), &CkptOptions::default()).unwrap();
    assert_eq!((third.parts_resumed, third.parts_written), (3, 1));
    assert!(third.labeled.equals_missing(&run.labeled));
    let _ = std::fs::remove_dir_all(&root);
}

/// The checkpoint error of a run that must fail.
fn ckpt_error(r: anyhow::Result<CkptRun>) -> CkptError {
    let e = r.err().expect("the run must fail");
    e.downcast_ref::<CkptError>().unwrap_or_else(|| panic!("not a checkpoint error: {e:#}")).clone()
}

/// The field a manifest mismatch names (and that it names the manifest).
fn mismatched_field(r: anyhow::Result<CkptRun>) -> CkptField {
    match ckpt_error(r) {
        CkptError::Mismatch { file, field, .. } => {
            assert!(file.ends_with("manifest.parquet"), "{}", file.display());
            field
        }
        other => panic!("not a mismatch: {other}"),
    }
}

#[test]
fn changed_prompt_sample_or_labeler_is_detected_not_mixed() {
    let root = tmp_dir("fp");
    let df = load_df(format!("{UTAH}/review-Utah.sample.json"), format!("{UTAH}/meta-Utah.partial.json")).unwrap().df;
    let ckpt = root.join("labels_ckpt");
    let opts = CkptOptions::default();
    label_with_ckpt(&df, 60, 25, &ckpt, &mut Labeler::rules(), &opts).unwrap();

    let mut edited = Labeler::rules();
    edited.prompt.system.push_str("\nBe lenient with ADS.");
    assert_eq!(mismatched_field(label_with_ckpt(&df, 60, 25, &ckpt, &mut edited, &opts)), CkptField::Prompt);
    assert_eq!(mismatched_field(label_with_ckpt(&df, 61, 25, &ckpt, &mut Labeler::rules(), &opts)), CkptField::Sample);
    let other_seed = CkptOptions { seed: 7, ..CkptOptions::default() };
    assert_eq!(mismatched_field(label_with_ckpt(&df, 60, 25, &ckpt, &mut Labeler::rules(), &other_seed)), CkptField::Sample);
    assert_eq!(mismatched_field(label_with_ckpt(&df, 60, 10, &ckpt, &mut Labeler::rules(), &opts)), CkptField::PartSize);
    // what the user reads says what changed and how to go on
    let err = format!("{:#}", label_with_ckpt(&df, 60, 10, &ckpt, &mut Labeler::rules(), &opts).unwrap_err());
    assert!(err.contains("different part size") && err.contains("restart"), "{err}");
    let mut slow = slow_labeler();
    slow.prompt = ModeratorPrompt::default();
    let same_rules = label_with_ckpt(&df, 60, 25, &ckpt, &mut slow, &opts);
    assert!(same_rules.is_ok(), "same backend/model/settings resume: {:?}", same_rules.err());

    // a part from another run is refused even under a matching manifest
    let other = root.join("other_ckpt");
    label_with_ckpt(&df, 60, 25, &other, &mut edited, &opts).unwrap();
    std::fs::copy(other.join("part_0001.parquet"), ckpt.join("part_0001.parquet")).unwrap();
    match ckpt_error(label_with_ckpt(&df, 60, 25, &ckpt, &mut Labeler::rules(), &opts)) {
        CkptError::PartOfAnotherRun { file, stored, this_run } => {
            assert!(file.ends_with("part_0001.parquet"), "{}", file.display());
            assert!(stored.is_some_and(|s| s != this_run));
        }
        other => panic!("not a part of another run: {other}"),
    }

    // restart on mismatch relabels from scratch with the new prompt
    let restart = CkptOptions { restart_on_mismatch: true, ..CkptOptions::default() };
    let run = label_with_ckpt(&df, 60, 25, &ckpt, &mut edited, &restart).unwrap();
    assert_eq!((run.parts_resumed, run.parts_written), (0, 3));
    assert!(run.warnings.iter().any(|w| w.contains("restarting")), "the restart is reported: {:?}", run.warnings);

    // parts without a manifest are not trusted
    std::fs::remove_file(ckpt.join("manifest.parquet")).unwrap();
    match ckpt_error(label_with_ckpt(&df, 60, 25, &ckpt, &mut edited, &opts)) {
        CkptError::PartsWithoutManifest { dir, part } => assert!(dir == ckpt && part.starts_with(&ckpt)),
        other => panic!("not parts without a manifest: {other}"),
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn preview_is_a_seeded_labeled_table() {
    let root = tmp_dir("preview");
    let (reviews, meta) = sample_files(&root, 600);
    let df = load_df(&reviews, &meta).unwrap().df;
    let a = label_preview(&df, 50, &mut Labeler::rules()).unwrap();
    let b = label_preview(&df, 50, &mut Labeler::rules()).unwrap();
    assert_eq!(a.height(), 50);
    assert!(a.equals_missing(&b), "same seed, same sample and labels");
    let shown = format!("{}", a.select(["orig_index", "is_relevant_overall", "backend"]).unwrap());
    assert!(shown.contains("shape: (50, 3)") && shown.contains("is_relevant_overall") && shown.contains("rules-only"), "{shown}");
    let names: Vec<String> = a.get_column_names().iter().map(|s| s.to_string()).collect();
    for c in LABEL_COLUMNS.iter().chain(&["rationale", "gemma_raw", "parse_success", "backend", "model", "llm_p_spam"]) {
        assert!(names.iter().any(|n| n == c), "missing column {c}: {names:?}");
    }
    // the generated data carries ads, rants and spam: the rules find some of each in 600 reviews
    let all = label_preview(&df, 600, &mut Labeler::rules()).unwrap();
    for c in LABEL_COLUMNS {
        let pos = all.column(c).unwrap().i32().unwrap().into_no_null_iter().filter(|v| *v == 1).count();
        assert!(pos > 0, "no positive {c} in the generated sample");
    }
    // missing business columns fall back with a warning, a missing text column is a clear error
    let only_text = df.select(["text"]).unwrap();
    let fallback = label_preview(&only_text, 5, &mut Labeler::rules()).unwrap();
    assert_eq!(fallback.height(), 5);
    assert_eq!(fallback.warnings.len(), 2, "business_name and category are reported: {:?}", fallback.warnings);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    let err = format!("{:#}", label_preview(&df.drop("text").unwrap(), 5, &mut Labeler::rules()).unwrap_err());
    assert!(err.contains("no `text` column"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}
