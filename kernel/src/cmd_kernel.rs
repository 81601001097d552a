//! `revmod kernel install`: registers a JupyterLab kernel (an evcxr kernel whose start-up loads the
//! support crate and its prelude), and the start-up hooks that let the `revmod` binary itself act
//! as evcxr's evaluation process, as the runner's proxy, and as the Jupyter kernel.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

const KERNEL_JSON: &str = include_str!("../kernelspec/kernel.json");
const INIT_EVCXR: &str = include_str!("../kernelspec/init.evcxr");
const PRELUDE_RS: &str = include_str!("../kernelspec/prelude.rs");
const LOGO_32: &[u8] = include_bytes!("../kernelspec/logo-32x32.png");
const LOGO_64: &[u8] = include_bytes!("../kernelspec/logo-64x64.png");

/// Must run first in `main`: when this process was started as evcxr's evaluation process, as its
/// rustc wrapper, as the runner's proxy or as a Jupyter kernel (`--control_file`), it does that
/// job and exits instead of parsing the CLI.
pub fn early_hooks() {
    if std::env::var_os(crate::runner::proxy::PROXY_ENV).is_some() {
        crate::runner::proxy::run();
    }
    #[cfg(feature = "notebook")]
    {
        evcxr::runtime_hook();
        if let Some(sock) = crate::jupyter::spare::is_spare_invocation() {
            crate::jupyter::spare::host_main(&sock);
        }
        if std::env::args().nth(1).as_deref() == Some("--control_file") {
            if let Err(e) = crate::runner::expose_toolchain_libs() {
                eprintln!("revmod kernel: {e:#}");
            }
            if std::env::var("REVMOD_KERNEL_IMPL").as_deref() == Ok("evcxr") {
                // The stock evcxr_jupyter loop, kept only as the "before" side of
                // kernel/tests/bench_kernel.py.
                if let Err(e) = evcxr_jupyter::main() {
                    eprintln!("revmod kernel (evcxr_jupyter): {e:#}");
                    std::process::exit(1);
                }
                std::process::exit(0);
            }
            let Some(file) = std::env::args_os().nth(2) else {
                eprintln!("revmod kernel: --control_file needs the connection file");
                std::process::exit(2);
            };
            if let Err(e) = crate::jupyter::main(Path::new(&file)) {
                eprintln!("revmod kernel: {e:#}");
                std::process::exit(1);
            }
            std::process::exit(0);
        }
    }
}

/// Arguments of `revmod kernel`.
#[derive(clap::Args, Debug)]
pub struct KernelArgs {
    #[command(subcommand)]
    pub command: KernelCommand,
}

/// `revmod kernel` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum KernelCommand {
    /// Write the kernelspec so JupyterLab offers a Rust kernel with `revmod` loaded.
    Install(InstallArgs),
}

/// Where and how to install the kernelspec.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Install for the current user (the default): $JUPYTER_DATA_DIR or ~/.local/share/jupyter.
    #[arg(long, conflicts_with_all = ["sys_prefix", "prefix"])]
    pub user: bool,
    /// Install into the Python environment's prefix (sys.prefix of $REVMOD_PYTHON or python3).
    #[arg(long, conflicts_with = "prefix")]
    pub sys_prefix: bool,
    /// Install under PREFIX/share/jupyter/kernels.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<PathBuf>,
    /// Kernel name (folder name; not `rust`).
    #[arg(long, default_value = "revmod")]
    pub name: String,
    /// Name shown in JupyterLab's launcher.
    #[arg(long, default_value = "Rust (revmod)")]
    pub display_name: String,
    /// Path of the support crate the kernel `:dep`s [default: the crate this binary was built from].
    #[arg(long, value_name = "DIR")]
    pub crate_path: Option<PathBuf>,
    /// Start a stock evcxr_jupyter binary instead of this binary's built-in kernel.
    #[arg(long, value_name = "PATH")]
    pub evcxr_jupyter: Option<PathBuf>,
    /// Only write the kernelspec; do not build the support crate into the kernel's build cache
    /// (the first kernel start then builds it, which takes minutes).
    #[arg(long)]
    pub no_build: bool,
}

/// Runs `revmod kernel ...`.
pub fn run(a: KernelArgs) -> Result<()> {
    match a.command {
        KernelCommand::Install(i) => {
            let dir = install(&i)?;
            println!("installed kernelspec `{}` in {}", i.name, dir.display());
            if !i.no_build && i.evcxr_jupyter.is_none() {
                #[cfg(feature = "notebook")]
                warm(&dir.join("evcxr"))?;
            }
            Ok(())
        }
    }
}

/// Builds the support crate the way the kernel loads it (`init.evcxr` + prelude in a build slot
/// of `exec::default_build_root()`), so the first notebook starts in seconds: a kernel takes the
/// first free slot, which is this one unless another notebook holds it.
#[cfg(feature = "notebook")]
fn warm(config_dir: &Path) -> Result<()> {
    use crate::runner::exec::{default_build_root, Session};
    use std::sync::atomic::{AtomicBool, Ordering};
    std::env::set_var("EVCXR_CONFIG_DIR", config_dir);
    crate::runner::preflight()?;
    crate::runner::expose_toolchain_libs()?;
    let root = default_build_root();
    println!(
        "building the support crate for notebooks under {} (once; compiles polars for evcxr when its cache is cold) ...",
        root.display()
    );
    let start = std::time::Instant::now();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let ticker = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut next = 15;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let secs = start.elapsed().as_secs();
                if secs >= next {
                    println!("  still building ... {secs} s");
                    next += 15;
                }
            }
        })
    };
    let cwd = std::env::current_dir()?;
    let result = (|| -> Result<std::path::PathBuf> {
        let mut s = Session::start_bare(&cwd, &root, None)?;
        s.load_config()?;
        let run = s.run_cell("let _revmod_warm = revmod::moderation::LABELS.len();", None);
        if let Some(f) = run.failure {
            bail!("a first cell failed after loading the support crate: {}: {}", f.ename(), f.evalue());
        }
        Ok(s.build_dir.clone())
    })();
    done.store(true, Ordering::SeqCst);
    let _ = ticker.join();
    let dir = result.context("building the support crate for the kernel (skip with --no-build)")?;
    println!("support crate ready for notebooks in {:.0} s (build folder {})", start.elapsed().as_secs_f64(), dir.display());
    Ok(())
}

/// The Jupyter data folder for `--user`: $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else
/// ~/.local/share/jupyter (Linux; jupyter_core's rules).
fn user_data_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("jupyter"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share/jupyter"))
}

fn sys_prefix() -> Result<PathBuf> {
    let py = std::env::var("REVMOD_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&py)
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .with_context(|| format!("running {py} to find sys.prefix"))?;
    if !out.status.success() {
        bail!("{py} failed to print sys.prefix");
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Checks a kernel name: Jupyter's allowed characters, and not `rust`.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        bail!("kernel name {name:?} must be letters, digits, '.', '_' or '-'");
    }
    if name.eq_ignore_ascii_case("rust") {
        bail!("the kernel must not be named `rust`: evcxr_jupyter rewrites that kernelspec when it updates itself");
    }
    Ok(())
}

/// Fills `{placeholder}` strings of the kernel.json template (everything except
/// `{connection_file}`, which Jupyter fills).
fn fill(v: &mut Value, vars: &[(&str, String)]) {
    match v {
        Value::String(s) => {
            for (k, val) in vars {
                *s = s.replace(&format!("{{{k}}}"), val);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fill(x, vars)),
        Value::Object(o) => o.values_mut().for_each(|x| fill(x, vars)),
        _ => {}
    }
}

fn kernel_exe(a: &InstallArgs) -> Result<PathBuf> {
    if let Some(p) = &a.evcxr_jupyter {
        return std::fs::canonicalize(p).with_context(|| format!("evcxr_jupyter at {}", p.display()));
    }
    if cfg!(feature = "notebook") {
        return Ok(std::fs::canonicalize(std::env::current_exe()?)?);
    }
    bail!(
        "this revmod was built without the `notebook` feature, so it cannot serve as the kernel; \
         rebuild with `--features notebook`, or pass `--evcxr-jupyter $(which evcxr_jupyter)` \
         (install it with `cargo install --locked evcxr_jupyter`)"
    )
}

/// Writes the kernelspec folder; returns it.
pub fn install(a: &InstallArgs) -> Result<PathBuf> {
    check_name(&a.name)?;
    let data = if let Some(p) = &a.prefix {
        p.join("share/jupyter")
    } else if a.sys_prefix {
        sys_prefix()?.join("share/jupyter")
    } else {
        user_data_dir()?
    };
    let dir = data.join("kernels").join(&a.name);
    let crate_path = match &a.crate_path {
        Some(p) => p.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let crate_path = std::fs::canonicalize(&crate_path)
        .with_context(|| format!("support crate folder {}", crate_path.display()))?;
    if !crate_path.join("Cargo.toml").exists() {
        bail!("{} has no Cargo.toml: pass --crate-path to the revmod support crate", crate_path.display());
    }
    let exe = kernel_exe(a)?;
    let config_dir = dir.join("evcxr");
    std::fs::create_dir_all(&config_dir).with_context(|| format!("creating {}", config_dir.display()))?;
    let vars = [
        ("kernel_exe", exe.display().to_string()),
        ("display_name", a.display_name.clone()),
        ("config_dir", config_dir.display().to_string()),
        ("crate_path", crate_path.display().to_string()),
    ];
    let mut spec: Value = serde_json::from_str(KERNEL_JSON).context("kernelspec/kernel.json template")?;
    fill(&mut spec, &vars);
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write("kernel.json", serde_json::to_string_pretty(&spec)?.as_bytes())?;
    write("logo-32x32.png", LOGO_32)?;
    write("logo-64x64.png", LOGO_64)?;
    // TOML basic strings: escape backslashes and quotes of the path.
    let toml_path = crate_path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    write("evcxr/init.evcxr", INIT_EVCXR.replace("{crate_path}", &toml_path).as_bytes())?;
    write("evcxr/prelude.rs", PRELUDE_RS.as_bytes())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("revmod").is_ok());
        assert!(check_name("Rust").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn template_fills_all_but_connection_file() {
        let mut spec: Value = serde_json::from_str(KERNEL_JSON).unwrap();
        fill(&mut spec, &[("kernel_exe", "/x/revmod".into()), ("display_name", "R".into()),
            ("config_dir", "/k/evcxr".into()), ("crate_path", "/repo".into())]);
        let s = spec.to_string();
        assert!(!s.contains("{kernel_exe}") && !s.contains("{config_dir}") && !s.contains("{crate_path}"));
        assert_eq!(spec["argv"][2], "{connection_file}");
        assert_eq!(spec["env"]["EVCXR_CONFIG_DIR"], "/k/evcxr");
        assert_ne!(spec["language"], "");
    }
}
