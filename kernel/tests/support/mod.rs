//! Helpers shared by the kernel crate's notebook tests (runner, walkthrough): the Python peer, the text of
//! an nbformat field, and validation with the real nbformat package.
#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[path = "../../../tests/support/python.rs"]
mod python;
pub use python::python;

/// An nbformat multiline field (a string or a list of strings) as one string.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// Validates a notebook with the real nbformat package (tests/peers/nbformat_validate.py) and checks it is
/// nbformat 4.5.
pub fn assert_valid(path: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/nbformat_validate.py");
    let o = Command::new(python()).arg(script).arg(path).output().expect("python3 runs");
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "nbformat rejects {}: {line}{}", path.display(), String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!((v["nbformat"].as_u64(), v["nbformat_minor"].as_u64()), (Some(4), Some(5)));
}
