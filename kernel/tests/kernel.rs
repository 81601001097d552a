//! `revmod kernel install` writes a kernelspec JupyterLab can start and builds the support crate into a
//! build slot; the tests start the kernel the way JupyterLab does: nbclient (an HTML table and an SVG),
//! jupyter_client at the protocol level (errors, streams, interrupts), and a real JupyterLab in headless
//! Chromium (Run All, restart, a second notebook, interrupting a labeling cell).
//!
//! Run: `cargo test --release --workspace --test kernel` (the first install compiles polars for evcxr
//! once, cold; the other installs wait for it and start from a copy of its build slot).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_revmod");

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn install(prefix: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        // as a user runs it: without the library path `cargo test` sets (with it, evcxr's dlopen of
        // the prelude's first compiled cell failed)
        .env_remove("LD_LIBRARY_PATH")
        .args(["kernel", "install", "--prefix"])
        .arg(prefix)
        .args(extra)
        .output()
        .unwrap()
}

/// Installs the kernelspec `name` under a fresh `tmp(dir)` prefix, building the support crate as a user's
/// install does; returns the prefix.
fn installed(dir: &str, name: &str) -> PathBuf {
    let prefix = tmp(dir);
    let o = install(&prefix, &["--name", name]);
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    prefix
}

/// The Python peer `tests/peers/<script>` with Jupyter finding the kernelspecs under `prefix`, started as
/// JupyterLab starts a kernel: without cargo's library path.
fn peer(script: &str, prefix: &Path) -> Command {
    let py = std::env::var("REVMOD_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut c = Command::new(py);
    c.env("JUPYTER_PATH", prefix.join("share/jupyter"))
        .env_remove("LD_LIBRARY_PATH")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers").join(script));
    c
}

/// Ends, when dropped, the warm spares (`revmod --kernel-spare`) that kernels of the kernelspecs under
/// `prefix` started: they would otherwise wait an hour for a next kernel, holding memory and a build slot.
struct EndSpares(PathBuf);

impl Drop for EndSpares {
    fn drop(&mut self) {
        let want = format!("EVCXR_CONFIG_DIR={}", self.0.display());
        let Ok(dir) = std::fs::read_dir("/proc") else { return };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let has = |hay: &[u8], needle: &[u8]| hay.split(|b| *b == 0).any(|w| w.starts_with(needle));
            if has(&cmd, b"--kernel-spare") && has(&env, want.as_bytes()) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                // a killed spare leaves its socket, claim and log files: remove them too
                if let Some(sock) = cmd.split(|b| *b == 0).skip_while(|w| *w != b"--kernel-spare").nth(1) {
                    let sock = PathBuf::from(String::from_utf8_lossy(sock).into_owned());
                    for ext in ["sock", "claim", "log"] {
                        let _ = std::fs::remove_file(sock.with_extension(ext));
                    }
                }
            }
        }
    }
}

/// The peer's JSON summary: the last stdout line that is a JSON object (the kernel's own output may
/// come before it).
fn summary(stdout: &str) -> Value {
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"))
}

#[test]
fn install_writes_a_complete_kernelspec() {
    let prefix = tmp("install");
    let o = install(&prefix, &["--name", "revmod-test", "--no-build"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = prefix.join("share/jupyter/kernels/revmod-test");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap()).unwrap();
    let argv: Vec<_> = spec["argv"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(argv[1..], ["--control_file", "{connection_file}"]);
    assert_eq!(Path::new(argv[0]), std::fs::canonicalize(BIN).unwrap());
    assert_eq!(spec["language"], "rust");
    let cfg = PathBuf::from(spec["env"]["EVCXR_CONFIG_DIR"].as_str().unwrap());
    assert_eq!(cfg, dir.join("evcxr"));
    let init = std::fs::read_to_string(cfg.join("init.evcxr")).unwrap();
    let repo = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap();
    assert!(init.contains(&format!(":dep revmod = {{ path = \"{}\" }}", repo.display())), "{init}");
    assert!(!init.contains(":cache "), "evcxr's own cache stays off (build slots are reused instead): {init}");
    assert!(std::fs::read_to_string(cfg.join("prelude.rs")).unwrap().contains("use revmod::prelude::*;"));
    for logo in ["logo-32x32.png", "logo-64x64.png"] {
        assert!(std::fs::read(dir.join(logo)).unwrap().starts_with(b"\x89PNG"));
    }
    // jupyter_client itself finds and parses the spec.
    let py = std::env::var("REVMOD_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = Command::new(py)
        .env("JUPYTER_PATH", prefix.join("share/jupyter"))
        .env_remove("LD_LIBRARY_PATH") // as JupyterLab starts it, without cargo's library path
        .args(["-c", "from jupyter_client.kernelspec import KernelSpecManager as K; s=K().get_kernel_spec('revmod-test'); print(s.display_name, s.language)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Rust (revmod) rust", "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_name_rust_is_refused() {
    let o = install(&tmp("rust"), &["--name", "rust"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("must not be named `rust`"));
}

#[test]
fn jupyter_runs_a_notebook_on_the_installed_kernel() {
    let prefix = installed("jupyter", "revmod-nbclient");
    let nb = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel_smoke.ipynb");
    let o = peer("kernel_nbclient.py", &prefix)
        .env("REVMOD_KERNEL_SPARE", "0") // one kernel start: a spare would only load for nobody
        .args(["revmod-nbclient"])
        .arg(&nb)
        .arg(prefix.join("executed.ipynb"))
        .arg("3600")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{line}\n{}", String::from_utf8_lossy(&o.stderr));
    let v = summary(&line);
    assert!(v["html_tables"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["svgs"].as_u64().unwrap() >= 1, "{v}");
    eprintln!("kernel test: {v}");
}

/// The kernel at the protocol level (tests/peers/kernel_protocol.py, jupyter_client): errors are error
/// replies and stop Run All, variables survive, output streams while a cell runs, interrupts stop a
/// watching cell cleanly and end one that ignores them; then, restarted once its warm spare loaded, the
/// kernel runs in the spare (fresh variables) and passes the same checks there.
#[test]
fn kernel_protocol_errors_streams_and_interrupts() {
    let prefix = installed("protocol", "revmod-protocol");
    let _end = EndSpares(prefix.join("share/jupyter/kernels/revmod-protocol/evcxr"));
    let o = peer("kernel_protocol.py", &prefix)
        .env_remove("RUST_BACKTRACE") // the test checks that no backtrace is shown unless asked for
        .env_remove("REVMOD_KERNEL_SPARE")
        .args(["revmod-protocol", "--restart"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("revmod kernel: took a warm spare"), "the restarted kernel runs in the spare:\n{stderr}");
    let v = summary(&stdout);
    assert!(v["restart_first_reply_s"].as_f64().is_some() && v["interrupt_watched_s_restarted"].as_f64().is_some(), "{v}");
    eprintln!("kernel protocol: {v}");
}

/// Issue 20, as a student uses JupyterLab: a real JupyterLab server (PyPI jupyterlab) and Debian's
/// chromium driven by playwright through JupyterLab's menus (tests/peers/jupyterlab_browser.py): Run All
/// renders the table and the SVG and stops at a panicking cell; Restart Kernel and Run All Cells comes
/// back within the budget; a second notebook runs at the same time; Kernel > Interrupt stops a labeling
/// cell, keeps its parts, and a re-run resumes. Screenshots: target/tmp/kernel/lab/out/*.png.
#[test]
fn jupyterlab_in_chromium_runs_restarts_and_interrupts() {
    let prefix = installed("lab", "revmod-lab");
    let _end = EndSpares(prefix.join("share/jupyter/kernels/revmod-lab/evcxr"));
    let out = prefix.join("out");
    let o = peer("jupyterlab_browser.py", &prefix)
        .arg(&prefix)
        .arg("revmod-lab")
        .arg(&out)
        // speed is measured by kernel/tests/bench_kernel.py, not asserted here: this only bounds a hang
        .args(["--budget", "900"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}\n(server log, screenshots: {})",
        String::from_utf8_lossy(&o.stderr),
        out.display()
    );
    let v = summary(&stdout);
    assert!(v["restart_first_result_s"].as_f64().is_some() && v["interrupt_s"].as_f64().unwrap() <= 60.0, "{v}");
    assert!(out.join("restart-run-all.png").exists() && out.join("interrupt.png").exists());
    eprintln!("jupyterlab test: {v}");
}
