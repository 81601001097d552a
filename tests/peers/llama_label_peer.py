#!/usr/bin/env python3
"""llama.cpp's server labeling reviews the way revmod's few-shot labeler does, for scripts/bench-label --batch.

Usage: llama_label_peer.py fewshot MODEL PIECES.json THREADS N_PARALLEL

PIECES.json is written by examples/bench_label.rs from revmod's own tokenization, so both sides see the same
token ids: {"prefix": [ids] (the few-shot page, <bos> first), "reviews": [[ids]] (each review's block followed
by the first question), "next": [[[ids], [ids]], ...] (after question q: the " no" / " yes" answer and the next
question), "yes": id, "no": id}.

The server is xllamacpp's embedded llama.cpp server (tests/peers/llama_peer.py) with N_PARALLEL slots and
continuous batching; N_PARALLEL client threads each take the next review and ask its five questions in turn,
as revmod does: a completion of one token whose prompt is the page, the review and the answers so far, under
the GBNF grammar `root ::= " yes" | " no"`, greedy; its answer picks the next piece. The slots keep their KV
cache between requests (cache_prompt), so a request computes only the tokens after the longest cached prefix.
Before the clock starts every slot has computed the page once (revmod's timed runs start from a computed page
too).

Prints one JSON document: reviews, secs, reviews_per_sec, requests, prompt_tokens_computed (the prompt tokens
llama.cpp computed rather than took from a slot's cache, from its timings), the answers (five booleans per
review, in question order) and llama.cpp's system info.
"""
import json
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_peer import server  # noqa: E402

GRAMMAR = 'root ::= " yes" | " no"'
# prompt tokens llama.cpp computed (not taken from a slot's cache), summed over requests
COMPUTED = [0]
LOCK = threading.Lock()


def complete(srv, ids):
    r = srv.handle_completions({
        "prompt": ids, "n_predict": 1, "temperature": 0, "cache_prompt": True, "grammar": GRAMMAR,
        "return_tokens": True,
    })
    if isinstance(r, dict) and "error" in r:
        raise RuntimeError(f"llama.cpp: {r['error']}")
    text = r["choices"][0]["text"]
    if text not in (" yes", " no"):
        raise RuntimeError(f"llama.cpp answered {text!r} under the yes/no grammar")
    with LOCK:
        COMPUTED[0] += int(r.get("timings", {}).get("prompt_n", 0))
    return text == " yes"


def label(srv, pieces, review):
    ids = pieces["prefix"] + review
    answers = []
    for q in range(5):
        yes = complete(srv, ids)
        answers.append(yes)
        if q + 1 < 5:
            ids = ids + pieces["next"][q][int(yes)]
    return answers


def fewshot(model, path, threads, n_parallel):
    pieces = json.load(open(path, encoding="utf-8"))
    longest = max(len(r) for r in pieces["reviews"]) + sum(max(len(a), len(b)) for a, b in pieces["next"])
    per_slot = len(pieces["prefix"]) + longest + 64
    srv = server(model, threads=threads, n_ctx=n_parallel * (1 << (per_slot - 1).bit_length()), n_parallel=n_parallel)
    import xllamacpp as xlc

    # every slot computes the page once, untimed (requests in parallel land on different slots)
    warm = [threading.Thread(target=complete, args=(srv, pieces["prefix"] + pieces["reviews"][i % len(pieces["reviews"])]))
            for i in range(n_parallel)]
    for t in warm:
        t.start()
    for t in warm:
        t.join()
    todo = queue.Queue()
    for i, r in enumerate(pieces["reviews"]):
        todo.put((i, r))
    answers = [None] * len(pieces["reviews"])
    errors = []

    def worker():
        while True:
            try:
                i, r = todo.get_nowait()
            except queue.Empty:
                return
            try:
                answers[i] = label(srv, pieces, r)
            except Exception as e:  # reported below, never silently dropped
                errors.append(f"review {i}: {e}")

    COMPUTED[0] = 0
    t0 = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(n_parallel)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    secs = time.perf_counter() - t0
    if errors:
        sys.exit("llama.cpp peer failed: " + "; ".join(errors[:3]))
    n = len(answers)
    json.dump({"reviews": n, "secs": secs, "reviews_per_sec": n / secs, "requests": 5 * n, "answers": answers,
               "prompt_tokens_computed": COMPUTED[0],
               "n_parallel": n_parallel, "threads": threads, "system_info": xlc.get_system_info().strip()}, sys.stdout)


def main():
    if len(sys.argv) != 6 or sys.argv[1] != "fewshot":
        sys.exit(__doc__)
    fewshot(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))


if __name__ == "__main__":
    main()
