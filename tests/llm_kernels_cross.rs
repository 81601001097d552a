// The Q8_0 SIMD kernels (src/llm/q8_0/kernels.rs) on every instruction set, including one this machine lacks:
// tests/kernels-aarch64 compiles the kernel file alone and checks each kernel bit for bit against a scalar
// reference of its arithmetic, natively (x86: AVX2, and AVX-512 VNNI where present) and for aarch64 under
// QEMU (`qemu-aarch64 -cpu max`, which has the dot-product extension), so the NEON path is run, not only built.
// Needs (scripts/setup installs them): the rustup target aarch64-unknown-linux-gnu, Debian's
// gcc-aarch64-linux-gnu and qemu-user.

use std::path::PathBuf;
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kernels-aarch64"))
}

/// `cargo test --release [--target T]` in the kernel crate; returns its output, failing with it.
fn cargo_test(target: Option<&str>) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate_dir())
        .args(["test", "--release"])
        .env("CARGO_TARGET_DIR", std::env::temp_dir().join("revmod-kernels-cross"))
        .env_remove("RUSTFLAGS");
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let out = cmd.output().expect("cannot run cargo");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "cargo test {target:?} in tests/kernels-aarch64 failed (scripts/setup installs the aarch64 target, \
         gcc-aarch64-linux-gnu and qemu-user):\n{text}"
    );
    text
}

#[test]
fn x86_kernels_match_their_reference_natively() {
    let out = cargo_test(None);
    #[cfg(target_arch = "x86_64")]
    assert!(out.contains("avx2_packed_kernel_matches_its_reference ... ok"), "{out}");
    let _ = out;
}

#[test]
fn neon_kernel_runs_and_matches_its_reference_under_qemu() {
    let out = cargo_test(Some("aarch64-unknown-linux-gnu"));
    assert!(out.contains("neon_kernel_matches_its_reference ... ok"), "{out}");
}
