"""Peer for tests/tfidf.rs and tests/train.rs: scikit-learn's TfidfVectorizer on the same texts.

stdin: JSON {"texts": [...], "vectorizers": [{"analyzer": "word"|"char", "ngram_range": [a, b],
             "min_df": int|float, "max_df": int|float, "max_features": int|null}, ...]}
             (a spec may add "transform_texts": [...] to transform other texts with the fitted vectorizer)
stdout: JSON {"vectorizers": [{"vocabulary": [terms by column], "idf": [...],
              "indptr": [...], "indices": [...], "data": [...], "tie_at_cut": bool,
              "transform": {"indptr", "indices", "data"} (when asked)}]}
`tie_at_cut` says whether max_features cut through a group of terms with equal corpus frequency
(scikit-learn's choice inside such a group depends on numpy's unstable argsort).
"""
import json
import sys

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer


def run(texts, spec):
    v = TfidfVectorizer(
        analyzer=spec["analyzer"],
        ngram_range=tuple(spec["ngram_range"]),
        min_df=spec["min_df"],
        max_df=spec["max_df"],
        max_features=spec.get("max_features"),
        dtype=np.float64,
    )
    x = v.fit_transform(texts).tocsr()
    x.sort_indices()
    vocab = v.get_feature_names_out().tolist()
    tie = False
    if spec.get("max_features"):
        # Refit without the cap to see whether the cut fell inside a tie.
        full = TfidfVectorizer(analyzer=spec["analyzer"], ngram_range=tuple(spec["ngram_range"]),
                               min_df=spec["min_df"], max_df=spec["max_df"])
        xf = full.fit_transform(texts)
        if xf.shape[1] > spec["max_features"]:
            from sklearn.feature_extraction.text import CountVectorizer
            cv = CountVectorizer(analyzer=spec["analyzer"], ngram_range=tuple(spec["ngram_range"]),
                                 min_df=spec["min_df"], max_df=spec["max_df"])
            tf = np.asarray(cv.fit_transform(texts).sum(axis=0)).ravel()
            s = np.sort(tf)[::-1]
            k = spec["max_features"]
            tie = bool(s[k - 1] == s[k])
    out = {}
    if "transform_texts" in spec:
        xt = v.transform(spec["transform_texts"]).tocsr()
        xt.sort_indices()
        out["transform"] = {"indptr": xt.indptr.tolist(), "indices": xt.indices.tolist(), "data": xt.data.tolist()}
    return out | {
        "vocabulary": vocab,
        "idf": v.idf_.tolist(),
        "indptr": x.indptr.tolist(),
        "indices": x.indices.tolist(),
        "data": x.data.tolist(),
        "tie_at_cut": tie,
    }


def main():
    req = json.load(sys.stdin)
    out = {"vectorizers": [run(req["texts"], s) for s in req["vectorizers"]]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
