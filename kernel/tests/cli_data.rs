//! `revmod sample-data` and `revmod load` as a user runs them.

use std::path::Path;
use std::process::Command;

fn revmod() -> Command {
    Command::new(env!("CARGO_BIN_EXE_revmod"))
}

#[test]
fn load_json_report_names_the_malformed_line_of_real_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = revmod()
        .args(["load", "--json", "--reviews"])
        .arg(root.join("../shared/data/google-local-utah/review-Utah.sample.json"))
        .arg("--meta")
        .arg(root.join("../shared/data/google-local-utah/meta-Utah.partial.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["review_lines"], 200);
    assert_eq!(v["review_bad"], 1);
    assert_eq!(v["bad_lines"][0]["line"], 112);
    assert!(v["bad_lines"][0]["file"].as_str().unwrap().ends_with("review-Utah.sample.json"));
    assert_eq!(v["rows"], 197);
    assert_eq!(v["review_duplicates"], 2);
    assert_eq!(v["meta_duplicates"], 8);
    assert_eq!(v["without_business"], 48);
    let cols: Vec<&str> = v["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(cols.contains(&"reviewer_name") && cols.contains(&"business_name"));
}

#[test]
fn sample_data_then_load_and_clear_error_for_missing_file() {
    let dir = std::env::temp_dir().join(format!("revmod-cli-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let st = revmod().args(["sample-data", "--reviews", "1000", "--out"]).arg(&dir).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("review-Vermont.json (1000 lines"), "{text}");
    let out = revmod()
        .arg("load")
        .arg("--reviews")
        .arg(dir.join("review-Vermont.json"))
        .arg("--meta")
        .arg(dir.join("meta-Vermont.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("malformed review lines (skipped)") && report.contains("skipped "), "{report}");
    let bad = revmod().args(["load", "--reviews", "/no/such/review.json", "--meta"]).arg(dir.join("meta-Vermont.json")).output().unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("/no/such/review.json"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
