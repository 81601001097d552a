"""The revmod Jupyter kernel at the protocol level, driven by jupyter_client as JupyterLab's server drives it.

Usage: python3 kernel_protocol.py KERNEL_NAME   (JUPYTER_PATH must reach the kernelspec)

Checks, each with the message that fails it:
  - kernel_info is answered within Jupyter's 60 s startup wait (the support crate loads after the reply);
  - a small cell returns its value; variables live across cells;
  - a panic, an Err through `?` and a compile error are `error` replies with ename/evalue/traceback, the
    panic's traceback names the cell line and has no backtrace (RUST_BACKTRACE unset);
  - cells queued behind a failing one (Run All) are `aborted`; variables of earlier cells survive;
  - Kernel > Interrupt (interrupt_request): a cell that watches `revmod::interrupt` stops cleanly and keeps
    its variables; a cell that ignores it is ended after the grace period with an `Interrupted` error, and
    the kernel runs the next cell;
  - output streams while a cell runs (a line printed before a pause arrives before the reply);
  - with --restart: once the kernel's warm spare has loaded, Restart Kernel gives a fresh session (the
    variables are gone) that passes all of the above again (it runs in the spare's process).
Prints one JSON line with the measured times.
"""
import glob
import json
import os
import re
import sys
import time

from jupyter_client import KernelManager


def collect(kc, msg_id, timeout):
    """iopub messages of one request until its idle status, then its shell reply."""
    out = {"stdout": "", "stderr": "", "data": {}, "error": None, "first_stream_at": None}
    t0 = time.time()
    while True:
        left = timeout - (time.time() - t0)
        assert left > 0, f"no idle status for {msg_id} in {timeout} s: {out}"
        m = kc.get_iopub_msg(timeout=left)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        t, c = m["msg_type"], m["content"]
        if t == "stream":
            out[c["name"]] += c["text"]
            if out["first_stream_at"] is None:
                out["first_stream_at"] = time.time()
        elif t in ("execute_result", "display_data"):
            out["data"].update(c["data"])
        elif t == "error":
            out["error"] = c
        elif t == "status" and c["execution_state"] == "idle":
            break
    while True:
        r = kc.get_shell_msg(timeout=timeout)
        if r["parent_header"].get("msg_id") == msg_id:
            out["reply"] = r["content"]
            out["replied_at"] = time.time()
            return out


def wait_for_stream(kc, msg_id, text, timeout):
    """Waits for a stream of msg_id containing text (the cell is compiled and running); the other
    iopub messages of that request are dropped (collect() then sees the rest)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream" and text in m["content"]["text"]:
            return
    raise AssertionError(f"no {text!r} from the cell in {timeout} s")


def run(kc, code, timeout=600):
    return collect(kc, kc.execute(code), timeout)


def spare_ready(config_dir, timeout):
    """Waits until a warm spare of this kernelspec (its log names the spec's evcxr config folder) has
    loaded and waits for a kernel; returns the seconds waited."""
    root = os.environ.get("REVMOD_EVCXR_DIR") or os.environ.get("EVCXR_TMPDIR") or os.path.expanduser("~/.cache/revmod/evcxr")
    t0 = time.time()
    while time.time() - t0 < timeout:
        for log in glob.glob(os.path.join(root, "spares", "*.log")):
            try:
                text = open(log).read()
            except OSError:
                continue
            pid = re.search(r"pid (\d+) for EVCXR_CONFIG_DIR=", text)
            alive = pid is not None and os.path.exists(f"/proc/{pid.group(1)}")  # not a killed spare's files
            if config_dir in text and "loaded in" in text and os.path.exists(log[:-4] + ".sock") and alive:
                return time.time() - t0
        time.sleep(0.5)
    raise AssertionError(f"no warm spare for {config_dir} loaded in {timeout} s (logs: {root}/spares)")


def main():
    name = sys.argv[1]
    res = {}
    km = KernelManager(kernel_name=name)
    t0 = time.time()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        res["kernel_info_s"] = round(time.time() - t0, 2)
        checks(km, kc, t0, res, "")
        if "--restart" in sys.argv:
            res["spare_wait_s"] = round(spare_ready(km.kernel_spec.env["EVCXR_CONFIG_DIR"], 900), 2)
            t0 = time.time()
            km.restart_kernel(now=False)
            kc.wait_for_ready(timeout=60)
            r = run(kc, "x", 600)
            assert r["reply"]["status"] == "error", f"a restarted kernel has no variables of the old one: {r}"
            res["restart_first_reply_s"] = round(time.time() - t0, 2)
            checks(km, kc, t0, res, "_restarted")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    print(json.dumps(res))


def checks(km, kc, t0, res, tag):
    """The protocol checks on one kernel session; times go into res with the suffix tag."""
    r = run(kc, "let x: i32 = 40 + 2;\nx", 1800)
    assert r["reply"]["status"] == "ok", r
    assert r["data"].get("text/plain") == "42", r
    res["first_result_s" + tag] = round(time.time() - t0, 2)

    # A panic: error reply, cell line named, no backtrace; the queued cell behind it is aborted.
    p = kc.execute("let v: Vec<u32> = Vec::new();\nlet first = v[x as usize];\nfirst")
    q = kc.execute("let never = 1;\nnever")
    r = collect(kc, p, 600)
    assert r["reply"]["status"] == "error", r
    assert r["reply"]["ename"] == "Panic" and r["error"]["ename"] == "Panic", r
    tb = "\n".join(r["reply"]["traceback"])
    assert "index out of bounds" in tb and "at cell line 2" in tb, tb
    assert "stack backtrace" not in tb, "no backtrace unless RUST_BACKTRACE asks: " + tb
    assert "panicked at" not in r["stderr"], "the panic report is in the error, not also in stderr: " + r["stderr"]
    r = collect(kc, q, 600)
    assert r["reply"]["status"] == "aborted", r
    r = run(kc, "x + 1")
    assert r["reply"]["status"] == "ok" and r["data"].get("text/plain") == "43", f"variables survive a panic: {r}"

    # An Err through `?` and a compile error.
    r = run(kc, 'let n: i32 = "seven".parse()?;\nn')
    assert r["reply"]["status"] == "error" and r["reply"]["ename"] == "Err", r
    text = r["reply"]["evalue"] + "\n".join(r["reply"]["traceback"])
    assert "InvalidDigit" in text or "invalid digit" in text, r
    r = run(kc, 'let s: i32 = "text";')
    assert r["reply"]["status"] == "error" and r["reply"]["ename"] == "CompilationError", r
    assert "mismatched types" in "\n".join(r["reply"]["traceback"]), r

    # Output streams while the cell runs.
    r = run(kc, 'eprintln!("started"); std::thread::sleep(std::time::Duration::from_secs(3)); 1')
    assert "started" in r["stderr"], r
    res["stream_lead_s" + tag] = round(r["replied_at"] - r["first_stream_at"], 2)
    assert res["stream_lead_s" + tag] >= 2.0, f"stderr came only with the reply: {res}"

    # Interrupt a cell that watches for it (as labeling does): it stops, variables stay.
    msg = kc.execute(
        "let stopped = {\n    let _w = revmod::interrupt::watch();\n    eprintln!(\"watching\");\n    let mut ticks = 0u64;\n"
        "    while !revmod::interrupt::requested() { std::thread::sleep(std::time::Duration::from_millis(50)); ticks += 1; }\n"
        '    format!("stopped after {} ticks", ticks)\n};\nstopped')
    wait_for_stream(kc, msg, "watching", 600)  # compiled and running: interrupt the run, not the build
    ti = time.time()
    km.interrupt_kernel()
    r = collect(kc, msg, 120)
    res["interrupt_watched_s" + tag] = round(r["replied_at"] - ti, 2)
    assert r["reply"]["status"] == "ok" and "stopped after" in r["data"].get("text/plain", ""), r
    assert res["interrupt_watched_s" + tag] < 10, res
    r = run(kc, "x + 2")
    assert r["data"].get("text/plain") == "44", f"variables survive a watched interrupt: {r}"

    # Interrupt a cell that ignores it: ended after the grace period, the kernel goes on.
    msg = kc.execute('eprintln!("sleeping");\nstd::thread::sleep(std::time::Duration::from_secs(120));\n1')
    wait_for_stream(kc, msg, "sleeping", 600)
    ti = time.time()
    km.interrupt_kernel()
    r = collect(kc, msg, 120)
    res["interrupt_ignored_s" + tag] = round(r["replied_at"] - ti, 2)
    assert r["reply"]["status"] == "error" and r["reply"]["ename"] == "Interrupted", r
    assert "variables of earlier cells are lost" in r["reply"]["evalue"], r
    r = run(kc, "2 + 3")
    assert r["reply"]["status"] == "ok" and r["data"].get("text/plain") == "5", f"the kernel runs on: {r}"


if __name__ == "__main__":
    main()
