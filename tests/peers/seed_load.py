"""The seed notebook's cell 3 as written with pandas (read_json lines=True; it dies on a malformed line),
timed by scripts/bench-load against `revmod load`. usage: seed_load.py REVIEWS META"""
import sys
import time

import pandas as pd

t = time.time()
reviews = pd.read_json(sys.argv[1], lines=True)
meta = pd.read_json(sys.argv[2], lines=True)
meta = meta.drop_duplicates(subset=["gmap_id"])
df = reviews.merge(meta, on="gmap_id", how="left")
df = df.drop_duplicates(subset=["user_id", "gmap_id", "text", "time", "rating"])
df = df.rename(columns={"name_x": "reviewer_name", "name_y": "business_name"})
print(f"pandas rows={len(df)} seconds={time.time() - t:.2f}", file=sys.stderr)
