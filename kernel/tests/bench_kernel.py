"""Benchmark of the JupyterLab kernel, driven with jupyter_client as JupyterLab drives it.

For each side it measures: start -> kernel_info reply, start -> first result (`40 + 2`), warm
restart -> kernel_info, -> first result, -> the DataFrame's HTML table, and the per-cell overhead
(median execute round trip of small cells on a warm kernel). Before each restart of the revmod side
it waits until the kernel's warm spare has loaded (as after a student's pause; the wait is printed).

Sides (the same `revmod` binary and kernelspec):
  revmod  the kernel's own loop (kernel/src/jupyter/), build slots under EVCXR_TMPDIR or
          ~/.cache/revmod/evcxr (warmed by `revmod kernel install`)
  evcxr   the stock evcxr_jupyter 0.22 loop (REVMOD_KERNEL_IMPL=evcxr) as users had it: evcxr's
          build folder in a fresh /tmp folder per start (EVCXR_TMPDIR unset)

Usage: python3 kernel/tests/bench_kernel.py REVMOD_BIN [--restarts N] [--cells N] [--no-evcxr]
       [--spec-prefix P] (use the kernelspec P/share/jupyter/kernels/revmod-bench instead of installing one)
       [--load "CMD"]   (run CMD in the background during the measurement: a busy machine)
Prints one line per measurement with both sides and the ratio, and the goals of issue 20.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from jupyter_client import KernelManager

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "peers"))
from kernel_protocol import spare_ready  # noqa: E402

# --no-table: the kernelspec loads no support crate (a loop-only comparison)
TABLE = "--no-table" not in sys.argv
DF_CELL = 'let df = revmod::polars::df!("label" => ["spam", "ads"], "n" => [3i64, 1]).unwrap();\ndf'


def execute(kc, code, timeout):
    """Runs code; returns (seconds to reply, reply status, mime types of results)."""
    t0 = time.time()
    msg_id = kc.execute(code)
    mimes = set()
    while True:
        left = timeout - (time.time() - t0)
        if left <= 0:
            raise TimeoutError(f"no reply to {code!r} in {timeout} s")
        m = kc.get_iopub_msg(timeout=left)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] in ("execute_result", "display_data"):
            mimes.update(m["content"]["data"].keys())
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return time.time() - t0, reply["content"]["status"], mimes


def measure_side(name, binary, prefix, restarts, cells, timeout):
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    env.pop("LD_LIBRARY_PATH", None)
    if name == "evcxr":
        env["REVMOD_KERNEL_IMPL"] = "evcxr"
        env.pop("EVCXR_TMPDIR", None)
        env.pop("REVMOD_EVCXR_DIR", None)
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
    km = KernelManager(kernel_name="revmod-bench")
    res = {}
    t0 = time.time()
    km.start_kernel(env=env, cwd=tempfile.gettempdir())
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
        res["start_kernel_info"] = time.time() - t0
        dt, status, _ = execute(kc, "40 + 2", timeout)
        res["start_first_result"] = time.time() - t0
        assert status == "ok", status
        if TABLE:
            dt, status, mimes = execute(kc, DF_CELL, timeout)
            assert "text/html" in mimes, mimes
            res["start_table"] = time.time() - t0
        small = []
        for i in range(cells):
            dt, status, _ = execute(kc, f"let s{i} = {i} + 1;", timeout)
            assert status == "ok", status
            small.append(dt)
        res["cell_median"] = statistics.median(small)
        firsts, tables, infos, waits = [], [], [], []
        for _ in range(restarts):
            if name == "revmod" and os.environ.get("REVMOD_KERNEL_SPARE") != "0":
                waits.append(spare_ready(km.kernel_spec.env["EVCXR_CONFIG_DIR"], timeout))
            t0 = time.time()
            km.restart_kernel(now=False)
            kc.wait_for_ready(timeout=timeout)
            infos.append(time.time() - t0)
            dt, status, _ = execute(kc, "40 + 2", timeout)
            firsts.append(time.time() - t0)
            if TABLE:
                dt, status, mimes = execute(kc, DF_CELL, timeout)
                assert "text/html" in mimes, mimes
                tables.append(time.time() - t0)
        if waits:
            res["spare_wait_before_restart"] = statistics.median(waits)
        if restarts:
            res["restart_kernel_info"] = statistics.median(infos)
            res["restart_first_result"] = statistics.median(firsts)
            res["restart_first_result_max"] = max(firsts)
            if tables:
                res["restart_table"] = statistics.median(tables)
                res["restart_table_max"] = max(tables)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return res


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help") or args[0].startswith("-"):
        sys.exit(__doc__)
    binary = os.path.abspath(args[0])

    def opt(name, default):
        return type(default)(args[args.index(name) + 1]) if name in args else default

    restarts, cells, timeout = opt("--restarts", 3), opt("--cells", 15), 1800
    load_cmd = opt("--load", "")
    if "--spec-prefix" in args:
        # An existing kernelspec named revmod-bench under PREFIX (e.g. one whose init.evcxr was edited).
        prefix = opt("--spec-prefix", "")
    else:
        prefix = tempfile.mkdtemp(prefix="revmod-bench-kernel-")
        t0 = time.time()
        p = subprocess.run([binary, "kernel", "install", "--prefix", prefix, "--name", "revmod-bench"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"kernel install failed:\n{p.stdout}\n{p.stderr}")
        print(f"kernel install (with the support-crate build) took {time.time() - t0:.1f} s")
    # its own process group, so that the whole load (the shell and what it started) ends with the bench
    load = subprocess.Popen(load_cmd, shell=True, start_new_session=True) if load_cmd else None
    try:
        sides = {"revmod": measure_side("revmod", binary, prefix, restarts, cells, timeout)}
        if "--no-evcxr" not in args:
            sides["evcxr"] = measure_side("evcxr", binary, prefix, restarts, cells, timeout)
    finally:
        if load:
            os.killpg(load.pid, 9)
    goals = {"restart_first_result": 5.0, "restart_table": 10.0, "cell_median": 0.5, "restart_kernel_info": 60.0}
    print(f"CPU: {cpu_name()}; load during the run: {load_cmd or 'none'}")
    for key in sides["revmod"]:
        a = sides["revmod"][key]
        line = f"{key:26s} revmod {a:8.2f} s"
        if "evcxr" in sides and key in sides["evcxr"]:
            b = sides["evcxr"][key]
            line += f"   evcxr_jupyter {b:8.2f} s   ratio {b / a if a else float('inf'):6.1f}x"
        if key in goals:
            line += f"   goal <= {goals[key]} s: {'met' if a <= goals[key] else 'MISSED'}"
        print(line)
    print(json.dumps(sides))


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" x{os.cpu_count()}"
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
