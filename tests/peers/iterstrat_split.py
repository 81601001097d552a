"""Peer for tests/split.rs: runs iterstrat's MultilabelStratifiedShuffleSplit on label matrices.

stdin: JSON {"cases": [{"y": [[0,1,...], ...], "test_size": 0.3, "seed": 42}, ...],
             "seed_split": [{"y": [[...]...]}]}   (optional: the seed's two-stage 70/15/15 split)
stdout: JSON {"cases": [{"test": [row indices]}], "seed_split": [{"part": ["train"|"val"|"test", ...]}]}
"""
import json
import sys

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit


def one(y, test_size, seed):
    y = np.asarray(y, dtype=int)
    msss = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(msss.split(np.zeros(len(y)), y))
    return train, test


def seed_split(y):
    """Seed cell 9: 30% held out (seed 42), then half of it is test (seed 43), the rest val."""
    y = np.asarray(y, dtype=int)
    _, hold = one(y, 0.30, 42)
    val, test = one(y[hold], 0.50, 43)
    part = np.array(["train"] * len(y), dtype=object)
    part[hold[val]] = "val"
    part[hold[test]] = "test"
    return part.tolist()


def main():
    req = json.load(sys.stdin)
    out = {"cases": [], "seed_split": []}
    for c in req.get("cases", []):
        _, test = one(c["y"], c["test_size"], c["seed"])
        out["cases"].append({"test": test.tolist()})
    for c in req.get("seed_split", []):
        out["seed_split"].append({"part": seed_split(c["y"])})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
