"""The seed's cell-3 semantics in pandas, as the parity peer of `load_df`.

Reads review and meta JSON lines (skipping lines json.loads rejects: the seed crashed on them instead),
drops duplicate meta rows on gmap_id, left-joins reviews to meta on gmap_id, drops duplicate reviews on
(user_id, gmap_id, text, time, rating) keeping the first, renames name_x/name_y. Prints one JSON object
with the counts and the joined rows' keys in order, for the Rust test to compare.

usage: pandas_load.py REVIEWS META
"""
import gzip
import json
import sys

import pandas as pd


def read_jsonl(path):
    rows, bad, lines = [], [], 0
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            lines += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                bad.append(i)
                continue
            if not isinstance(obj, dict):
                bad.append(i)
                continue
            rows.append(obj)
    return pd.DataFrame(rows), bad, lines


def main():
    reviews, rbad, rlines = read_jsonl(sys.argv[1])
    meta, mbad, mlines = read_jsonl(sys.argv[2])
    n_meta = len(meta)
    meta = meta.drop_duplicates(subset=["gmap_id"])
    meta_dups = n_meta - len(meta)
    df = reviews.merge(meta, on="gmap_id", how="left")
    n = len(df)
    df = df.drop_duplicates(subset=["user_id", "gmap_id", "text", "time", "rating"])
    review_dups = n - len(df)
    df = df.rename(columns={"name_x": "reviewer_name", "name_y": "business_name"})
    known = set(meta["gmap_id"].dropna())
    without = int((~df["gmap_id"].isin(known)).sum())

    def s(v):
        return None if v is None or (isinstance(v, float) and v != v) else str(v)

    keys = [
        [s(r.user_id), s(r.gmap_id), s(r.text), s(r.business_name)]
        for r in df[["user_id", "gmap_id", "text", "business_name"]].itertuples(index=False)
    ]
    print(json.dumps({
        "review_lines": rlines,
        "review_bad_lines": rbad,
        "meta_lines": mlines,
        "meta_bad_lines": mbad,
        "meta_duplicates": meta_dups,
        "review_duplicates": review_dups,
        "without_business": without,
        "rows": len(df),
        "null_text": int(df["text"].isna().sum()),
        "keys": keys,
    }))


if __name__ == "__main__":
    main()
