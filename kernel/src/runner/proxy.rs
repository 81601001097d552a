//! The evaluation-process proxy: evcxr starts this (our own binary with `REVMOD_EVCXR_PROXY=1`)
//! as its "runtime"; it starts the real evcxr runtime (our binary again, running
//! `evcxr::runtime_hook`) and relays stdin/stdout line by line.
//!
//! Why: evcxr swallows the signals that matter to a headless runner. A panic or an `Err` from a
//! `?` in a cell is reported by the runtime on stdout (`EVCXR_PANIC_NOTIFICATION`,
//! `EVCXR_ERROR_OCCURRED`) and consumed by evcxr, which then returns success; and it keeps only
//! the last display per MIME type. The proxy adds, in order on the same stream, its own lines that
//! evcxr passes through to the runner untouched: an event line before each of those signals, a
//! JSON copy of every display block, and the runtime's exit status when it dies.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// Environment variable that selects proxy mode in `early_hooks`.
pub const PROXY_ENV: &str = "REVMOD_EVCXR_PROXY";
/// Prefix of the event lines the proxy adds (`panic`, `error`, `exit <status>`).
pub const EVENT_PREFIX: &str = "REVMOD_EVCXR_EVENT ";
/// Prefix of the display copies: one JSON object `{"mime":..,"data":..}` per line.
pub const DISPLAY_PREFIX: &str = "REVMOD_EVCXR_DISPLAY ";

/// Runs the proxy until the runtime exits; never returns.
pub fn run() -> ! {
    let code = match relay() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("revmod evcxr proxy: {e:#}");
            98
        }
    };
    std::process::exit(code)
}

static CHILD_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_sigint(_: libc::c_int) {
    let pid = CHILD_PID.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
}

/// The kernel interrupts a cell by sending SIGINT to this proxy (the process evcxr knows); it is
/// passed on to the runtime that runs the cell, where the support crate's `interrupt::watch`
/// turns it into a flag (or, outside a watch, it ends the runtime).
fn forward_sigint_to(pid: i32) {
    CHILD_PID.store(pid, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: installs an async-signal-safe handler (an atomic load and kill).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

fn relay() -> anyhow::Result<i32> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env_remove(PROXY_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            // Die with the proxy (the runner kills the proxy on a timeout), and never leave core
            // files in the notebook's folder when a cell aborts.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    forward_sigint_to(child.id() as i32);
    let mut child_in = child.stdin.take().expect("piped");
    let child_out = child.stdout.take().expect("piped");

    // evcxr evaluates `42` while it starts, before the runner can drain its output channel: extra
    // lines then would block it, so the proxy stays silent during the first evaluation.
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runs_in = runs.clone();
    // stdin: evcxr -> runtime. When evcxr closes our stdin, close the runtime's so it exits.
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.starts_with("LOAD_AND_RUN ") {
                runs_in.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            if writeln!(child_in, "{line}").and_then(|_| child_in.flush()).is_err() {
                break;
            }
        }
    });

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut block: Option<(String, Vec<String>)> = None;
    for line in BufReader::new(child_out).lines() {
        let line = line?;
        if runs.load(std::sync::atomic::Ordering::SeqCst) <= 1 {
            writeln!(out, "{line}")?;
            out.flush()?;
            continue;
        }
        if let Some((mime, lines)) = block.as_mut() {
            if line == "EVCXR_END_CONTENT" {
                let copy = serde_json::json!({ "mime": mime, "data": lines.join("\n") });
                writeln!(out, "{DISPLAY_PREFIX}{copy}")?;
                writeln!(out, "EVCXR_BEGIN_CONTENT {mime}")?;
                for l in lines.iter() {
                    writeln!(out, "{l}")?;
                }
                writeln!(out, "{line}")?;
                block = None;
            } else if line == "EVCXR_PANIC_NOTIFICATION" {
                // A panic while a display was being written: pass the partial block on as evcxr
                // would have seen it, then the panic.
                writeln!(out, "EVCXR_BEGIN_CONTENT {mime}")?;
                for l in lines.iter() {
                    writeln!(out, "{l}")?;
                }
                block = None;
                writeln!(out, "{EVENT_PREFIX}panic")?;
                writeln!(out, "{line}")?;
            } else {
                lines.push(line);
            }
        } else if let Some(mime) = line.strip_prefix("EVCXR_BEGIN_CONTENT ") {
            block = Some((mime.split(' ').next().unwrap_or(mime).to_owned(), Vec::new()));
        } else {
            match line.as_str() {
                "EVCXR_PANIC_NOTIFICATION" => writeln!(out, "{EVENT_PREFIX}panic")?,
                "EVCXR_ERROR_OCCURRED" => writeln!(out, "{EVENT_PREFIX}error")?,
                _ => {}
            }
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    let status = child.wait()?;
    if !status.success() {
        // Best effort: evcxr may already have stopped reading.
        let _ = writeln!(out, "{EVENT_PREFIX}exit {status}").and_then(|_| out.flush());
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
