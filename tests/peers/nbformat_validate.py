"""Validate notebooks with the reference nbformat package (the peer of the runner's .ipynb writer).

Usage: python3 nbformat_validate.py NOTEBOOK.ipynb [...]
Prints one JSON line per notebook: {"path", "valid", "nbformat", "nbformat_minor", "cells", "error"}.
Exit status 0 when all are valid, 1 otherwise.
"""
import json
import sys

import nbformat


def check(path):
    try:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        nbformat.validate(nb, relax_add_props=False)
        return {"path": path, "valid": True, "nbformat": nb.nbformat,
                "nbformat_minor": nb.nbformat_minor, "cells": len(nb.cells), "error": None}
    except Exception as e:  # report any reason, the Rust test asserts on it
        return {"path": path, "valid": False, "error": f"{type(e).__name__}: {e}"}


def main():
    ok = True
    for p in sys.argv[1:]:
        r = check(p)
        ok &= r["valid"]
        print(json.dumps(r))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
