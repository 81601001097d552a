"""Run a notebook through an installed kernelspec the way JupyterLab does (jupyter_client + nbclient).

Usage: python3 kernel_nbclient.py KERNEL_NAME NOTEBOOK.ipynb OUT.ipynb [TIMEOUT_S]
Executes every cell with nbclient, writes the executed notebook, and prints one JSON line:
{"kernel", "cells", "html_tables", "svgs", "errors", "seconds"} where html_tables counts outputs with a
text/html <table>, svgs counts image/svg+xml outputs or <svg> inside text/html.
Exit status 0 when execution finished without a cell error.
"""
import json
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main():
    kernel, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    timeout = int(sys.argv[4]) if len(sys.argv) > 4 else 1800
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel, timeout=timeout, startup_timeout=timeout,
                            resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}})
    t0 = time.time()
    error = None
    try:
        client.execute()
    except CellExecutionError as e:
        error = str(e).splitlines()[0] if str(e) else "CellExecutionError"
    nbformat.write(nb, out)
    tables = svgs = errors = 0
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                errors += 1
            data = o.get("data", {})
            html = data.get("text/html", "")
            if isinstance(html, list):
                html = "".join(html)
            if "<table" in html:
                tables += 1
            if "image/svg+xml" in data or "<svg" in html:
                svgs += 1
    print(json.dumps({"kernel": kernel, "cells": len(nb.cells), "html_tables": tables, "svgs": svgs,
                      "errors": errors, "first_error": error, "seconds": round(time.time() - t0, 1)}))
    sys.exit(0 if errors == 0 and error is None else 1)


if __name__ == "__main__":
    main()
