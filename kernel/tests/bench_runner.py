"""Benchmark of `revmod run` on the support-crate notebook (kernel/tests/fixtures/support_crate.ipynb):
cold run (empty evcxr build folder), warm re-run (same folder), and the median evcxr overhead per small
cell (cells that only add two integers, so their duration is evcxr's compile + load + run overhead).

Usage: python3 kernel/tests/bench_runner.py [REVMOD_BIN] [--skip-cold]
Prints both sides and the ratio against the goal (<= 2 s per cell) and the anchor (evcxr issue #504:
6.5 s per cell with polars).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NB = os.path.join(HERE, "fixtures", "support_crate.ipynb")


def run(binary, build_dir, out):
    t0 = time.time()
    p = subprocess.run([binary, "run", NB, "--out", out, "--quiet", "--build-dir", build_dir],
                       capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        sys.exit(f"revmod run failed ({p.returncode}):\n{p.stderr[-3000:]}")
    nb = json.load(open(out))
    small = [c["metadata"]["papermill"]["duration"] for c in nb["cells"]
             if c["cell_type"] == "code" and "".join(c["source"]).startswith("let s")]
    first = [c["metadata"]["papermill"]["duration"] for c in nb["cells"] if c["cell_type"] == "code"][0]
    return wall, first, small


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    binary = args[0] if args else os.path.join(HERE, "..", "..", "target", "release", "revmod")
    build_dir = os.environ.get("REVMOD_BENCH_BUILD_DIR") or os.path.join(tempfile.gettempdir(), "revmod-bench-evcxr")
    out = os.path.join(tempfile.gettempdir(), "revmod-bench.ipynb")
    if "--skip-cold" not in sys.argv:
        shutil.rmtree(build_dir, ignore_errors=True)
        wall, first, small = run(binary, build_dir, out)
        print(f"cold run: {wall:.1f} s wall (first cell, the :dep of revmod: {first:.1f} s)")
    wall, first, small = run(binary, build_dir, out)
    med = statistics.median(small)
    print(f"warm run: {wall:.1f} s wall (first cell, the :dep of revmod: {first:.1f} s)")
    print(f"per-cell overhead, median of {len(small)} small cells: {med:.2f} s "
          f"(min {min(small):.2f}, max {max(small):.2f})")
    print(f"  vs goal 2.0 s: ratio {med / 2.0:.2f} ({'met' if med <= 2.0 else 'NOT met'})")
    print(f"  vs evcxr issue #504 anchor 6.5 s: ratio {med / 6.5:.2f}")


if __name__ == "__main__":
    main()
