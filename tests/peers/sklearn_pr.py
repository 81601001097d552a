"""Peer for tests/eval.rs: scikit-learn's precision_recall_curve on cases written by the Rust test.

Usage: python3 sklearn_pr.py DIR
DIR/cases.txt lists case names, one a line. For each NAME: NAME.y (uint8 0/1 per row) and NAME.s
(little-endian float64 scores). Writes NAME.prec, NAME.rec, NAME.thr (little-endian float64) exactly as
sklearn.metrics.precision_recall_curve returns them, and NAME.best (float64: the threshold of maximal
F1 = 2pr/(p+r), 0 where p+r = 0, over the points that have a threshold, first maximum: the seed's choice).
Binary files keep every float bit-exact across the language boundary.
"""
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

d = Path(sys.argv[1])
for name in (d / "cases.txt").read_text().split():
    y = np.fromfile(d / f"{name}.y", dtype=np.uint8).astype(np.int64)
    s = np.fromfile(d / f"{name}.s", dtype="<f8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No positive class found" for the 0-positive case
        p, r, t = precision_recall_curve(y, s)
    p.astype("<f8").tofile(d / f"{name}.prec")
    r.astype("<f8").tofile(d / f"{name}.rec")
    t.astype("<f8").tofile(d / f"{name}.thr")
    pp, rr = p[:-1], r[:-1]
    den = pp + rr
    f1 = np.divide(2 * pp * rr, den, out=np.zeros_like(den), where=den > 0)
    np.array([t[int(np.argmax(f1))]], dtype="<f8").tofile(d / f"{name}.best")
print("ok")
