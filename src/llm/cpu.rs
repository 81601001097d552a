//! Which quantized-product kernel this CPU runs, and what the CPU has: picked once at run time.
//!
//! Why: the tiled Q8_0 product ([`super::q8_0`]) has one implementation per instruction set, and a speed
//! figure means little without the path that produced it. [`kernel_path`] picks the best path the CPU
//! supports; [`features`] lists the CPU features that matter for it. Both are printed by
//! `revmod generate --json` and `scripts/bench-llm`.
//!
//! Paths, best first (`avx2` before `avx512vnni`: measured faster on both AVX-512 VNNI CPUs tried, see
//! [`detected_path`]):
//! - `avx2`: x86-64 with AVX2, FMA and F16C (`vpmaddubsw` + `vpmaddwd`, llama.cpp's AVX2 arithmetic);
//! - `avx512vnni`: x86-64 with AVX2, FMA and AVX-512 F/VL/VNNI (`vpdpbusd`, 4 x 4 tiles, bit-identical to
//!   candle's arithmetic): only when asked for;
//! - `neon`: aarch64 with the dot-product extension (`sdot`; Apple M1 and later, Neoverse, Cortex-A76+);
//! - `candle`: none of these: candle-core's own per-row kernels run.
//!
//! The switch `REVMOD_CPU_KERNEL=avx2` (or `candle`, `neon`, `avx512vnni`) asks for a path; a path the CPU
//! cannot run is refused with a warning on stderr and the detected one is used, so the switch can only step
//! down, except to `avx512vnni`, which is never detected first. It exists to measure one path against
//! another. candle's own k-quant kernels (Q4_K, Q6_K) have their own switch, `MISTRALRS_FORCE_AVX2=1`
//! (read by candle-core 0.11); `scripts/bench-llm` sets both when `REVMOD_CPU_KERNEL=avx2`.

use std::sync::OnceLock;

/// A quantized-product implementation (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelPath {
    /// candle-core's per-row kernels (no tiled kernel for this CPU).
    Candle,
    /// aarch64 NEON tiles.
    Neon,
    /// x86-64 AVX2 + FMA tiles.
    Avx2,
    /// x86-64 AVX-512 VNNI tiles.
    Avx512Vnni,
}

/// Name of the environment variable that asks for a path.
pub const KERNEL_ENV: &str = "REVMOD_CPU_KERNEL";

impl KernelPath {
    /// The name used by `REVMOD_CPU_KERNEL` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Candle => "candle",
            KernelPath::Neon => "neon",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512Vnni => "avx512vnni",
        }
    }

    /// Parses a name written by [`KernelPath::name`] (`scalar` is accepted for `candle`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "candle" | "scalar" => KernelPath::Candle,
            "neon" => KernelPath::Neon,
            "avx2" => KernelPath::Avx2,
            "avx512vnni" | "avx512" | "vnni" => KernelPath::Avx512Vnni,
            _ => return None,
        })
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            KernelPath::Candle => true,
            KernelPath::Neon => has_dotprod(),
            KernelPath::Avx2 => has_avx2(),
            KernelPath::Avx512Vnni => has_avx2() && has_avx512vnni(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn has_dotprod() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}
#[cfg(not(target_arch = "aarch64"))]
fn has_dotprod() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn has_avx512vnni() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx512vnni() -> bool {
    false
}

/// The best path this CPU supports, ignoring `REVMOD_CPU_KERNEL`: AVX2, then AVX-512 VNNI, then NEON.
///
/// AVX2 comes first even where AVX-512 VNNI is there: its eight-row packed layout beat the VNNI path's 4 x 4
/// tiles (which follow candle's lane order) on both AVX-512 VNNI CPUs measured (2 threads, the embedded 270M,
/// 242-token prompt, interleaved `revmod generate --json` runs): an AMD EPYC (prefill 582-630 tok/s against
/// 496-575, decode 77-83 against 60-70; Zen 4 runs 512-bit instructions as two 256-bit halves) and an Intel
/// Xeon with AVX-512 VNNI and AVX-VNNI (seven rounds: prefill 388-561 tok/s against 380-467, ahead in five;
/// decode 42.9-60.4 against 45.1-49.6, ahead in six; against llama.cpp's AVX2 build in `RUNS=3
/// scripts/bench-llm`: prefill 1.23-1.59x for AVX2, 1.14-1.25x for VNNI).
/// Since the VNNI path is never picked first, it is there only through `REVMOD_CPU_KERNEL=avx512vnni`.
pub fn detected_path() -> KernelPath {
    [KernelPath::Avx2, KernelPath::Avx512Vnni, KernelPath::Neon]
        .into_iter()
        .find(|p| p.available())
        .unwrap_or(KernelPath::Candle)
}

/// The path to use: `requested` when given and available, else the detected one. The reason for refusing a
/// request is returned with it.
pub fn choose(requested: Option<&str>) -> (KernelPath, Option<String>) {
    let detected = detected_path();
    let Some(r) = requested.filter(|r| !r.trim().is_empty()) else { return (detected, None) };
    match KernelPath::parse(r) {
        None => (detected, Some(format!("{KERNEL_ENV}={r} is not one of avx512vnni, avx2, neon, candle; using {}", detected.name()))),
        Some(p) if !p.available() => (detected, Some(format!("{KERNEL_ENV}={r}: this CPU cannot run it; using {}", detected.name()))),
        Some(p) => (p, None),
    }
}

/// The path chosen once for this process, with the reason a request was refused.
fn chosen() -> &'static (KernelPath, Option<String>) {
    static CHOSEN: OnceLock<(KernelPath, Option<String>)> = OnceLock::new();
    CHOSEN.get_or_init(|| choose(std::env::var(KERNEL_ENV).ok().as_deref()))
}

/// The path the tiled products use in this process (chosen once; see the module doc).
pub fn kernel_path() -> KernelPath {
    chosen().0
}

/// Why this process does not use the path `REVMOD_CPU_KERNEL` asked for (unknown name, or this CPU cannot
/// run it), for the caller to show; [`describe`] includes it.
pub fn kernel_path_warning() -> Option<&'static str> {
    chosen().1.as_deref()
}

/// The CPU features that decide the path, present ones only, e.g. `["avx2", "fma", "f16c"]`.
pub fn features() -> Vec<&'static str> {
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! check {
            ($($f:tt),*) => { $( if std::is_x86_feature_detected!($f) { v.push($f); } )* };
        }
        check!("sse4.2", "avx", "avx2", "fma", "f16c", "avxvnni", "avx512f", "avx512bw", "avx512vl", "avx512vnni");
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! check {
            ($($f:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($f) { v.push($f); } )* };
        }
        check!("neon", "dotprod", "i8mm");
    }
    v
}

/// The level candle-core 0.11 picks for its own tiled k-quant kernels (Q4_K, Q6_K, and Q8_0 with an inner
/// dimension that is a multiple of 256) on x86-64: its `repack_x86::level` logic, which is not public,
/// including its `MISTRALRS_FORCE_AVX2` / `MISTRALRS_FORCE_AVXVNNI` switches. `"none"` elsewhere (on aarch64
/// candle picks per type from `dotprod`/`i8mm`, see [`features`]).
pub fn candle_kquant_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let on = |v: &str| std::env::var(v).as_deref() == Ok("1");
        let (force_avx2, force_vnni) = (on("MISTRALRS_FORCE_AVX2"), on("MISTRALRS_FORCE_AVXVNNI"));
        if !force_avx2 && !force_vnni && std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vnni") {
            return "avx512vnni";
        }
        if !force_avx2 && (force_vnni || std::is_x86_feature_detected!("avxvnni")) && std::is_x86_feature_detected!("avx2") {
            return "avxvnni";
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "avx2";
        }
    }
    "none"
}

/// One line for reports: the paths and the features, e.g.
/// `kernel avx2, candle k-quants avx2 (cpu: avx avx2 fma f16c)`.
pub fn describe() -> String {
    let line = format!("kernel {}, candle k-quants {} (cpu: {})", kernel_path().name(), candle_kquant_level(), features().join(" "));
    match kernel_path_warning() {
        Some(w) => format!("{line}; {w}"),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_requests_only_step_down() {
        for p in [KernelPath::Candle, KernelPath::Neon, KernelPath::Avx2, KernelPath::Avx512Vnni] {
            assert_eq!(KernelPath::parse(p.name()), Some(p));
        }
        assert_eq!(KernelPath::parse("scalar"), Some(KernelPath::Candle));
        assert_eq!(KernelPath::parse("sse9"), None);
        let detected = detected_path();
        assert!(detected.available());
        assert_eq!(choose(None), (detected, None));
        assert_eq!(choose(Some("")), (detected, None));
        assert_eq!(choose(Some("candle")), (KernelPath::Candle, None));
        let (p, w) = choose(Some("sse9"));
        assert_eq!(p, detected);
        assert!(w.unwrap().contains("not one of"));
        // a path this CPU lacks is refused
        for p in [KernelPath::Neon, KernelPath::Avx2, KernelPath::Avx512Vnni] {
            let (got, w) = choose(Some(p.name()));
            if p.available() {
                assert_eq!((got, w), (p, None));
            } else {
                assert_eq!(got, detected);
                assert!(w.unwrap().contains("cannot run"), "{p:?}");
            }
        }
    }

    #[test]
    fn features_name_the_detected_path() {
        let f = features();
        match detected_path() {
            KernelPath::Avx512Vnni => panic!("AVX-512 VNNI is never detected first (AVX2 comes before it)"),
            KernelPath::Avx2 => assert!(f.contains(&"avx2") && f.contains(&"fma") && f.contains(&"f16c")),
            KernelPath::Neon => assert!(f.contains(&"neon")),
            KernelPath::Candle => assert!(!(f.contains(&"avx2") && f.contains(&"fma") && f.contains(&"f16c")) && !f.contains(&"dotprod")),
        }
        assert!(describe().starts_with("kernel "));
    }
}
