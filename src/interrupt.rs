//! Cooperative interruption of long steps: JupyterLab's Kernel > Interrupt (and Ctrl-C in a
//! terminal) sends SIGINT to the process running the cell. While a long step runs it holds a
//! [`Watch`], which turns SIGINT into a process-wide flag; the step polls [`requested`] between
//! reviews and stops at a clean point (labeling keeps every checkpointed part, so a re-run
//! resumes) with an [`Interrupted`] error instead of the process being killed mid-write.
//!
//! Outside a watch SIGINT keeps its previous meaning (by default it ends the process).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// While alive, SIGINT sets the interrupt flag instead of ending the process; dropping it
/// restores the previous handler. Created with the flag cleared.
pub struct Watch {
    prev: libc::sigaction,
}

/// Starts watching for SIGINT (see [`Watch`]).
pub fn watch() -> Watch {
    REQUESTED.store(false, Ordering::SeqCst);
    // SAFETY: installs an async-signal-safe handler (one atomic store); `prev` receives the old one.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut new.sa_mask);
        new.sa_flags = libc::SA_RESTART;
        let mut prev: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGINT, &new, &mut prev);
        Watch { prev }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: restores the handler saved in `watch`.
        unsafe {
            libc::sigaction(libc::SIGINT, &self.prev, std::ptr::null_mut());
        }
    }
}

/// True once an interrupt was requested since the current [`watch`] began.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Requests an interrupt without a signal (other front ends, tests).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// The error a step returns when it stopped because of an interrupt; callers tell it apart with
/// `err.downcast_ref::<Interrupted>()`.
#[derive(Debug, Clone)]
pub struct Interrupted {
    /// What was kept and how to go on, e.g. "3 of 10 parts are saved in out/ckpt; run the cell again to resume".
    pub detail: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted: {}", self.detail)
    }
}

impl std::error::Error for Interrupted {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigint_sets_the_flag_only_while_watched() {
        let w = watch();
        assert!(!requested());
        // SAFETY: our handler is installed, so SIGINT only sets the flag.
        unsafe { libc::raise(libc::SIGINT) };
        assert!(requested());
        drop(w);
        let _w = watch();
        assert!(!requested(), "a new watch starts cleared");
        let e = anyhow::Error::new(Interrupted { detail: "2 of 5 parts saved".into() });
        assert!(e.downcast_ref::<Interrupted>().is_some());
        assert_eq!(e.to_string(), "interrupted: 2 of 5 parts saved");
    }
}
