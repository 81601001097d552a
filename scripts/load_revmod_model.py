"""Loads a revmod model directory (docs/model-format.md) into scikit-learn objects, for the benchmark's
scikit-learn side: the same vocabulary, idf and coefficients as `revmod score` uses.

load_sklearn(dir) -> (word TfidfVectorizer, char TfidfVectorizer, {label: LogisticRegression},
                      {label: threshold})
"""
import json
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def read_safetensors_f64(path, name):
    b = Path(path).read_bytes()
    n = int.from_bytes(b[:8], "little")
    header = json.loads(b[8:8 + n])
    t = header[name]
    assert t["dtype"] == "F64", t
    a, z = t["data_offsets"]
    return np.frombuffer(b[8 + n + a:8 + n + z], dtype="<f8").reshape(t["shape"])


def vectorizer(path):
    v = json.loads(Path(path).read_text())
    p = v["params"]
    analyzer = str(p["analyzer"]).lower()
    vec = TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=tuple(p["ngram_range"]),
        lowercase=bool(p["lowercase"]),
        smooth_idf=bool(p["smooth_idf"]),
        sublinear_tf=bool(p["sublinear_tf"]),
        norm=None if str(p["norm"]).lower() == "none" else "l2",
        dtype=np.float64,
    )
    vec.vocabulary_ = {t: i for i, t in enumerate(v["vocabulary"])}
    vec.idf_ = np.asarray(v["idf"], dtype=np.float64)
    return vec


def load_sklearn(d):
    d = Path(d)
    m = json.loads((d / "manifest.json").read_text())
    blocks = {b["name"]: b for b in m["blocks"]}
    word = vectorizer(d / blocks["word"]["file"])
    char = vectorizer(d / blocks["char"]["file"])
    coef = read_safetensors_f64(d / m["weights"], "coef")
    models = json.loads((d / m["models"]).read_text())["models"]
    th = json.loads((d / m["thresholds"]).read_text())["thresholds"]
    clfs = {}
    for e in models:
        clf = LogisticRegression(solver="liblinear", C=1.0, class_weight="balanced")
        clf.classes_ = np.array([0, 1])
        if e["kind"] == "logreg":
            clf.coef_ = coef[e["row"]].reshape(1, -1).copy()
            clf.intercept_ = np.array([e["intercept"]])
        else:  # constant probability: zero weights, intercept = logit(p)
            p = min(max(float(e["proba"]), 1e-12), 1 - 1e-12)
            clf.coef_ = np.zeros((1, m["n_features"]))
            clf.intercept_ = np.array([np.log(p / (1 - p))])
        clf.n_features_in_ = m["n_features"]
        clfs[e["label"]] = clf
    return word, char, clfs, th
