//! The Python interpreter of the test peers, shared by the root crate's tests (`tests/support`) and the
//! kernel crate's (`kernel/tests/support` includes this file by `#[path]`): one definition for both.

/// The Python interpreter with the peers installed (env REVMOD_PYTHON, default python3).
pub fn python() -> String {
    std::env::var("REVMOD_PYTHON").unwrap_or_else(|_| "python3".into())
}
