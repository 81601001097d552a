# Shared environment for revmod's scripts (sourced, not run). Caches live outside the clone so that a
# second run (and CI on the same machine) reuses compiled dependencies; override with REVMOD_CACHE.
export REVMOD_CACHE="${REVMOD_CACHE:-$HOME/.cache/revmod}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REVMOD_CACHE/target}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-1}"
export REVMOD_VENV="${REVMOD_VENV:-$REVMOD_CACHE/venv}"
export REVMOD_PYTHON="${REVMOD_PYTHON:-$REVMOD_VENV/bin/python}"
export REVMOD_BIN="$CARGO_TARGET_DIR/release/revmod"
# evcxr builds notebook code here: fixed, and outside the Cargo workspace (inside it breaks evcxr).
export EVCXR_TMPDIR="${EVCXR_TMPDIR:-$REVMOD_CACHE/evcxr}"
export PATH="$HOME/.cargo/bin:$PATH"
