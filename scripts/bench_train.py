"""Python side of scripts/bench-train: data preparation and the scikit-learn baseline fit (seed cell 10).

  bench_train.py prepare N OUT.json   real review texts of ../shared/data/reviews-40k (resampled with
                                      replacement, seed 0, when N exceeds the 39k distinct texts) and five
                                      labels derived from them (the same rules as tests/support)
  bench_train.py fit DATA.json OUT.json   fits word(1,2)+char(3,5) TfidfVectorizer + liblinear LR per label,
                                      writes fit seconds and the probabilities of the first 1000 rows
  bench_train.py compare RS.json PY.json  prints both times, the ratio and max |p_rs - p_py|
"""
import glob
import json
import os
import re
import sys
import time

import numpy as np


def prepare(n, out):
    import pandas as pd

    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "..", "..", "shared", "data", "reviews-40k", "*.csv")))
    df = pd.concat([pd.read_csv(f) for f in files]).dropna(subset=["text"])
    if n > len(df):
        df = df.sample(n=n, replace=True, random_state=0)
    else:
        df = df.iloc[:n]
    texts = df["text"].astype(str).tolist()
    pl = df["policy_label"].tolist()
    low = [t.lower() for t in texts]
    has = lambda t, ws: any(w in t for w in ws)
    ads = [has(t, ["http", "www.", ".com", "discount", "coupon", "promo", "call us"]) for t in low]
    y = []
    for i, t in enumerate(low):
        rel = pl[i] == 1
        irr = pl[i] == 0 and not ads[i]
        nv = has(t, ["never been", "haven't been", "have not been", "never went", "didn't go"])
        spam = "!!!!" in texts[i]
        y.append([int(rel), int(ads[i]), int(irr), int(nv), int(spam)])
    json.dump({"texts": texts, "y": y}, open(out, "w"))


def fit(data, out):
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    import resource

    d = json.load(open(data))
    texts, y = d["texts"], np.asarray(d["y"])
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    w = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, max_df=0.9, max_features=200000)
    c = TfidfVectorizer(analyzer="char", ngram_range=(3, 5), min_df=2, max_features=300000)
    x = sp.hstack([w.fit_transform(texts), c.fit_transform(texts)]).tocsr()
    t1 = time.perf_counter()
    models = [LogisticRegression(solver="liblinear", C=1.0, class_weight="balanced").fit(x, y[:, j])
              for j in range(y.shape[1])]
    t2 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    xs = x[:1000]
    proba = [m.predict_proba(xs)[:, 1].tolist() for m in models]
    json.dump({"vectorize_s": t1 - t0, "fit_s": t2 - t1, "total_s": t2 - t0, "cpu_s": cpu, "n_features": x.shape[1],
               "proba": proba}, open(out, "w"))


def compare(rs, py):
    a, b = json.load(open(rs)), json.load(open(py))
    d = max(abs(p - q) for pa, pb in zip(a["proba"], b["proba"]) for p, q in zip(pa, pb))
    print(f"  features: revmod {a['n_features']}, scikit-learn {b['n_features']}")
    print(f"  scikit-learn: {b['total_s']:8.2f} s  (vectorizers {b['vectorize_s']:.2f} s, 5 models {b['fit_s']:.2f} s)")
    print(f"  revmod:       {a['total_s']:8.2f} s  (vectorizers {a['vectorize_s']:.2f} s, 5 models {a['fit_s']:.2f} s)")
    print(f"  ratio (scikit-learn / revmod): {b['total_s'] / a['total_s']:.1f}x   "
          f"[vectorizers {b['vectorize_s'] / a['vectorize_s']:.1f}x, models {b['fit_s'] / a['fit_s']:.1f}x]")
    print(f"  CPU time (user+sys, all threads): scikit-learn {b['cpu_s']:.2f} s, revmod {a['cpu_s']:.2f} s, "
          f"ratio {b['cpu_s'] / max(a['cpu_s'], 1e-9):.1f}x")
    print(f"  parity: max |p_revmod - p_sklearn| over 1000 rows x 5 labels = {d:.2e}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "prepare":
        prepare(int(sys.argv[2]), sys.argv[3])
    elif cmd == "fit":
        fit(sys.argv[2], sys.argv[3])
    elif cmd == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
