"""Opens revmod's output files the way its users do, with every tool they have: pandas, pyarrow, DuckDB
and Python polars. The peer of tests/outputs.rs.

Reads a JSON request on stdin: a list of {"path", "format": "parquet"|"csv", "rows": [row numbers],
"json_columns": [columns that CSV holds as JSON text]}. For each file and reader, prints (one JSON object
on stdout) the row count, the column names and, for every column, the values at the requested rows as
plain JSON (lists, objects, numbers, strings, null), or the reader's error message. A reader that fails
on one file is reported and the others go on, so the Rust test can name every failing file and reader.

Readers:
  pandas   pandas.read_parquet / pandas.read_csv with default arguments (what a user types first)
  pyarrow  pyarrow.parquet.read_table / pyarrow.csv.read_csv, values by .to_pylist()
  duckdb   SELECT * FROM read_parquet(...) / read_csv(...) (DuckDB's own readers and type detection)
  polars   polars.read_parquet / polars.read_csv

usage: read_outputs.py < request.json
"""
import json
import math
import sys

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def plain(v):
    """A reader's cell value as plain JSON: numpy arrays and scalars, NaN/NA, dicts, tuples unwrapped."""
    if v is None:
        return None
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()]
    if isinstance(v, pl.Series):
        return [plain(x) for x in v.to_list()]
    if isinstance(v, np.generic):
        v = v.item()
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def from_json_text(v):
    """A CSV cell holding JSON text (nested columns), parsed; empty or missing cells are null."""
    if isinstance(v, str):
        return json.loads(v) if v.strip() else None
    return v


def summary(columns, n_rows, values_of, rows, json_columns):
    """What one reader saw: rows, column names, the requested rows' values per column."""
    values = {}
    for c in columns:
        vs = [plain(v) for v in values_of(c)]
        if c in json_columns:
            vs = [plain(from_json_text(v)) for v in vs]
        values[c] = vs
    return {"rows": n_rows, "columns": list(columns), "values": values}


def read_pandas(path, fmt, rows, json_columns):
    df = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    return summary(list(df.columns), len(df), lambda c: [df[c].iloc[i] for i in rows], rows, json_columns)


def read_pyarrow(path, fmt, rows, json_columns):
    t = pq.read_table(path) if fmt == "parquet" else pacsv.read_csv(path)
    taken = t.take(pa.array(rows, type=pa.int64())) if rows else t.slice(0, 0)
    return summary(t.column_names, t.num_rows, lambda c: taken.column(c).to_pylist(), rows, json_columns)


def read_duckdb(path, fmt, rows, json_columns):
    con = duckdb.connect()
    if fmt == "parquet":
        n = con.execute("SELECT count(*) FROM read_parquet(?)", [path]).fetchone()[0]
        cur = con.execute("SELECT * FROM read_parquet(?, file_row_number = true) "
                          "WHERE file_row_number IN (SELECT unnest(?::BIGINT[])) ORDER BY file_row_number",
                          [path, rows])
        names = [d[0] for d in cur.description]
        at = names.index("file_row_number")
        got = {r[at]: r[:at] + r[at + 1:] for r in cur.fetchall()}
        names = names[:at] + names[at + 1:]
    else:
        # A plain scan keeps the file's row order (DuckDB's preserve_insertion_order, on by default).
        cur = con.execute("SELECT * FROM read_csv(?, header = true)", [path])
        names = [d[0] for d in cur.description]
        all_rows = cur.fetchall()
        n = len(all_rows)
        got = {i: all_rows[i] for i in rows}
    return summary(names, n, lambda c: [got[i][names.index(c)] for i in rows], rows, json_columns)


def read_polars(path, fmt, rows, json_columns):
    df = pl.read_parquet(path) if fmt == "parquet" else pl.read_csv(path)
    return summary(df.columns, df.height, lambda c: [df[c][i] for i in rows], rows, json_columns)


READERS = {"pandas": read_pandas, "pyarrow": read_pyarrow, "duckdb": read_duckdb, "polars": read_polars}


def main():
    request = json.load(sys.stdin)
    out = {
        "versions": {"pandas": pd.__version__, "pyarrow": pa.__version__, "duckdb": duckdb.__version__,
                     "polars": pl.__version__},
        "files": [],
    }
    for f in request:
        readers = {}
        for name, read in READERS.items():
            try:
                readers[name] = read(f["path"], f["format"], f["rows"], set(f.get("json_columns", [])))
            except Exception as e:  # reported per reader: the test names the file, the reader and this error
                readers[name] = {"error": f"{type(e).__name__}: {e}"}
        out["files"].append({"path": f["path"], "readers": readers})
    json.dump(out, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
