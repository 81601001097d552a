#!/usr/bin/env python3
"""Benchmark of step 13-14 scoring: `revmod score` against the seed's scikit-learn predict_df.

Sub-commands (scripts/bench-score runs them in order):
  make-data OUT N         OUT/review-bench.json: N Google Local-shaped reviews whose texts are resampled
                          (seeded, with replacement) from ../shared/data/reviews-40k; OUT/train.csv: the
                          40k real texts with 0/1 label columns for `revmod train`.
  sklearn MODEL REVIEWS OUT
                          the scikit-learn side: loads the revmod model directory into TfidfVectorizer and
                          LogisticRegression objects (same vocabulary, idf, coefficients), reads the reviews
                          with pandas, and runs the seed's predict_df (transform word + char, hstack,
                          predict_proba x 5); prints one JSON line of timings.
  run MODEL REVIEWS OUT REVMOD
                          runs both sides as child processes, measures wall time and peak RSS (wait4),
                          checks that both produce the same probabilities, prints the comparison.
"""
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "reviews-40k"
LABELS = ["relevant", "ads", "irrelevant", "non_visit", "spam"]


def real_texts():
    import pandas as pd

    frames = [pd.read_csv(p) for p in sorted(DATA.glob("*.csv"))]
    return pd.concat(frames, ignore_index=True)


def make_data(out, n):
    import numpy as np
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = real_texts()
    texts = df["text"].dropna().astype(str).tolist()
    rng = np.random.default_rng(2025)
    pick = rng.integers(0, len(texts), size=n)
    with open(out / "review-bench.json", "w") as f:
        for i, k in enumerate(pick):
            f.write(json.dumps({
                "user_id": str(10**20 + i), "name": f"user {i}", "time": 1500000000000 + i,
                "rating": int(rng.integers(1, 6)), "text": texts[k], "pics": None, "resp": None,
                "gmap_id": f"0x{k:x}:bench",
            }) + "\n")
    # Training set for `revmod train`: the real texts with labels derived from policy_label and keyword
    # rules (the same rules as tests/support), in the labeler's is_* columns.
    train = df[["text", "policy_label"]].dropna(subset=["text"]).drop_duplicates("text").reset_index(drop=True)
    low = train["text"].str.lower()
    has = lambda words: low.apply(lambda t: any(w in t for w in words))
    ads = has(["http", "www.", ".com", "discount", "coupon", "promo", "call us"])
    out_df = pd.DataFrame({
        "text": train["text"],
        "is_relevant_overall": (train["policy_label"] == 1).astype(int),
        "is_advertisement": ads.astype(int),
        "is_irrelevant": ((train["policy_label"] == 0) & ~ads).astype(int),
        "is_rant_without_visit": has(["never been", "haven't been", "have not been", "never went", "didn't go"]).astype(int),
        "is_spam": train["text"].str.contains("!!!!", regex=False).astype(int),
    })
    out_df.to_csv(out / "train.csv", index=False)
    print(f"wrote {n} reviews to {out / 'review-bench.json'}")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sklearn_side(model_dir, reviews, out):
    import numpy as np
    import pandas as pd
    from scipy.sparse import hstack

    from load_revmod_model import load_sklearn

    t0 = time.perf_counter()
    word, char, clfs, thresholds = load_sklearn(Path(model_dir))
    t_load_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = pd.read_json(reviews, lines=True)
    t_read = time.perf_counter() - t0
    rss_before = peak_rss_mb()

    # The seed's predict_df: transform word + char, hstack, predict_proba per label.
    t0 = time.perf_counter()
    texts = df["text"].fillna("").astype(str)
    X = hstack([word.transform(texts), char.transform(texts)]).tocsr()
    for lab in LABELS:
        p = clfs[lab].predict_proba(X)[:, 1]
        df[f"p_{lab}"] = p
        df[lab] = (p >= thresholds[lab]).astype(int)
    t_score = time.perf_counter() - t0
    t0 = time.perf_counter()
    df.drop(columns=["pics", "resp"], errors="ignore").to_parquet(out)
    t_write = time.perf_counter() - t0
    print(json.dumps({
        "rows": len(df), "model_load_s": t_load_model, "read_s": t_read, "predict_df_s": t_score,
        "write_s": t_write, "peak_rss_before_predict_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
    }))


def run_measured(cmd):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed with exit code {code}")
    return wall, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime


def run(model_dir, reviews, out, revmod):
    import numpy as np
    import pandas as pd

    out = Path(out)
    rust_out = out / "scored-rust.parquet"
    py_out = out / "scored-sklearn.parquet"
    py_json = out / "sklearn-side.json"
    n = sum(1 for _ in open(reviews))
    print(f"bench-score: {n} reviews (texts resampled from {DATA}), model {model_dir}, {os.cpu_count()} cores")

    rust_cmd = [revmod, "score", "--model", str(model_dir), "--reviews", str(reviews), "--out", str(rust_out)]
    rust_wall, rust_rss, rust_cpu = run_measured(rust_cmd)

    py_cmd = ["sh", "-c", f'{sys.executable} "{HERE / "bench_score.py"}" sklearn "{model_dir}" "{reviews}" "{py_out}" > "{py_json}"']
    py_wall, py_rss, py_cpu = run_measured(py_cmd)
    side = json.loads(Path(py_json).read_text().strip().splitlines()[-1])

    cols = [f"p_{lab}" for lab in LABELS] + LABELS
    a = pd.read_parquet(rust_out, columns=cols)  # (revmod's list<string_view> `pics` is not pandas-readable)
    b = pd.read_parquet(py_out, columns=cols)
    assert len(a) == len(b) == n, (len(a), len(b), n)
    diffs = {lab: float(np.max(np.abs(a[f"p_{lab}"].to_numpy() - b[f"p_{lab}"].to_numpy()))) for lab in LABELS}
    agree = {lab: float(np.mean(a[lab].to_numpy() == b[lab].to_numpy())) for lab in LABELS}

    sk_score = side["predict_df_s"]
    print()
    print(f"{'side':<34}{'wall s':>10}{'reviews/s':>12}{'peak RSS MiB':>14}{'CPU s':>10}")
    print(f"{'revmod score (read+score+write)':<34}{rust_wall:>10.2f}{n / rust_wall:>12.0f}{rust_rss:>14.0f}{rust_cpu:>10.1f}")
    print(f"{'scikit-learn process (all)':<34}{py_wall:>10.2f}{n / py_wall:>12.0f}{py_rss:>14.0f}{py_cpu:>10.1f}")
    print(f"{'  of which predict_df only':<34}{sk_score:>10.2f}{n / sk_score:>12.0f}{side['peak_rss_mb']:>14.0f}")
    print(f"  (sklearn: model load {side['model_load_s']:.1f}s, pandas read_json {side['read_s']:.1f}s, "
          f"write {side['write_s']:.1f}s, peak RSS before predict_df {side['peak_rss_before_predict_mb']:.0f} MiB)")
    print()
    print(f"speed ratio, revmod end-to-end vs sklearn predict_df only: {sk_score / rust_wall:.1f}x (goal >= 20x)")
    print(f"speed ratio, end-to-end vs end-to-end:                      {py_wall / rust_wall:.1f}x")
    print(f"CPU-time ratio, whole processes (robust to a loaded machine): {py_cpu / rust_cpu:.1f}x")
    print(f"peak memory ratio revmod / sklearn:                         {rust_rss / py_rss:.3f} (goal <= 0.25)")
    print(f"max |p_rust - p_sklearn| per label: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    print(f"same 0/1 decision per label:        " + ", ".join(f"{k} {v:.5f}" for k, v in agree.items()))


if __name__ == "__main__":
    cmd = sys.argv[1]
    sys.path.insert(0, str(HERE))
    if cmd == "make-data":
        make_data(sys.argv[2], int(sys.argv[3]))
    elif cmd == "sklearn":
        sklearn_side(*sys.argv[2:5])
    elif cmd == "run":
        run(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
