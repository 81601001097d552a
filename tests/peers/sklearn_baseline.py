"""Peer for tests/logreg.rs and tests/train.rs: the seed's scikit-learn baseline (cell 10).

stdin: JSON with "mode":
  "logreg":   {"X": csr, "ys": [[0/1 per row] per label], "X_eval": csr, "tol": float}
              -> {"proba": [[p per eval row] per label], "intercept": [...]}
              LogisticRegression(solver='liblinear', C=1.0, class_weight='balanced') per label.
  "pipeline": {"train_texts", "train_y": [[0/1 per label] per row], "val_texts", "val_y", "eval_texts"}
              -> {"proba": [[p per label] per eval row], "thresholds": [...], "n_features": int}
              word(1,2)+char(3,5) TfidfVectorizer, hstack, liblinear LR per label, thresholds = first best
              validation F1 on np.arange(0.1, 0.91, 0.05) (labels with one train class are skipped: null).
  "artifacts": {"dir": path, "texts": [...]} -> {"proba": [[...] per text]}
              Scores texts from revmod's saved model with numpy + scikit-learn only (checks the format is
              readable from Python: docs/model-format.md).
csr = {"n_rows", "n_cols", "indptr", "indices", "data"}.
"""
import json
import struct
import sys

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score


def csr(d):
    return sp.csr_matrix((np.asarray(d["data"], dtype=np.float64), np.asarray(d["indices"]),
                          np.asarray(d["indptr"])), shape=(d["n_rows"], d["n_cols"]))


def lr(tol=1e-4):
    return LogisticRegression(solver="liblinear", C=1.0, class_weight="balanced", tol=tol)


def mode_logreg(req):
    x, xe = csr(req["X"]), csr(req["X_eval"])
    probas, intercepts = [], []
    for y in req["ys"]:
        m = lr(req.get("tol", 1e-4)).fit(x, np.asarray(y))
        probas.append(m.predict_proba(xe)[:, 1].tolist())
        intercepts.append(float(m.intercept_[0]))
    return {"proba": probas, "intercept": intercepts}


def vectorizers():
    w = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, max_df=0.9, max_features=200000)
    c = TfidfVectorizer(analyzer="char", ngram_range=(3, 5), min_df=2, max_features=300000)
    return w, c


def mode_pipeline(req):
    w, c = vectorizers()
    tr = req["train_texts"]
    xtr = sp.hstack([w.fit_transform(tr), c.fit_transform(tr)]).tocsr()
    feats = lambda t: sp.hstack([w.transform(t), c.transform(t)]).tocsr()
    xv, xe = feats(req["val_texts"]), feats(req["eval_texts"])
    ytr, yv = np.asarray(req["train_y"]), np.asarray(req["val_y"])
    grid = np.arange(0.1, 0.91, 0.05)
    proba = np.full((xe.shape[0], ytr.shape[1]), np.nan)
    thresholds = []
    for j in range(ytr.shape[1]):
        if len(np.unique(ytr[:, j])) < 2:
            thresholds.append(None)
            continue
        m = lr().fit(xtr, ytr[:, j])
        pv = m.predict_proba(xv)[:, 1]
        best_t, best_f1 = 0.5, -1.0
        for t in grid:
            f1 = f1_score(yv[:, j], (pv >= t).astype(int), zero_division=0)
            if f1 > best_f1:
                best_t, best_f1 = float(t), f1
        thresholds.append(best_t)
        proba[:, j] = m.predict_proba(xe)[:, 1]
    return {"proba": [[None if np.isnan(v) else float(v) for v in r] for r in proba],
            "thresholds": thresholds, "n_features": int(xtr.shape[1])}


def read_safetensors(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    t = header[name]
    a, b = t["data_offsets"]
    return np.frombuffer(data[a:b], dtype="<f8").reshape(t["shape"])


def mode_artifacts(req):
    d = req["dir"]
    man = json.load(open(f"{d}/manifest.json"))
    assert man["format"] == "revmod/baseline_tfidf_lr" and man["version"] == 1, man
    blocks = []
    for b in man["blocks"]:
        v = json.load(open(f"{d}/{b['file']}"))
        p = v["params"]
        mdf = lambda x: x.get("count", x.get("fraction"))
        vec = TfidfVectorizer(analyzer=p["analyzer"], ngram_range=tuple(p["ngram_range"]),
                              vocabulary={t: i for i, t in enumerate(v["vocabulary"])},
                              lowercase=p["lowercase"], sublinear_tf=p["sublinear_tf"],
                              smooth_idf=p["smooth_idf"], norm="l2" if p["norm"] == "l2" else None)
        vec.fit(["placeholder"])  # sets up the fixed vocabulary; idf is replaced next
        vec.idf_ = np.asarray(v["idf"], dtype=np.float64)
        blocks.append(vec)
    x = sp.hstack([b.transform(req["texts"]) for b in blocks]).tocsr()
    coef = read_safetensors(f"{d}/{man['weights']}", "coef")
    models = json.load(open(f"{d}/{man['models']}"))["models"]
    out = np.zeros((x.shape[0], len(models)))
    for j, m in enumerate(models):
        if m["kind"] == "logreg":
            z = x @ coef[m["row"]] + m["intercept"]
            out[:, j] = 1.0 / (1.0 + np.exp(-z))
        else:
            out[:, j] = m["proba"]
    return {"proba": out.tolist()}


def main():
    req = json.load(sys.stdin)
    mode = {"logreg": mode_logreg, "pipeline": mode_pipeline, "artifacts": mode_artifacts}[req["mode"]]
    json.dump(mode(req), sys.stdout)


if __name__ == "__main__":
    main()
