"""A small Hugging Face hub on 127.0.0.1 for tests/llm_hub.rs: the endpoints hf-hub 0.4 calls, with the
headers the real hub sends.

Usage: python3 hub_server.py ROOT
ROOT/<org>/<name>/... are the repositories (one revision, "main", commit = sha1 of the file list);
ROOT/hub.json configures misbehaviour:
  {"token": "...",            # the one valid token
   "gated": ["org/name"],     # needs "Authorization: Bearer <token>": 401 without a token, 403 with another
   "cut_once": ["org/name/file"],  # the first full GET of this file sends half the bytes, then closes
   "corrupt": ["org/name/file"]}   # serves the file with one byte changed (the announced sha256 stays)
Prints `READY <port>` once listening; logs one JSON line per request to ROOT/requests.log (before the body
is sent, so a client that has its response always finds its request in the log)
(method, path, range, whether a valid token came: never the token itself).

Endpoints (as huggingface.co answers them):
  GET /api/models/<org>/<name>/revision/<rev>  -> {"id", "sha", "siblings": [{"rfilename"}]}
  GET|HEAD /<org>/<name>/resolve/<rev>/<file>  -> the file; Range requests get 206 + Content-Range;
      headers x-repo-commit, etag (git blob sha1) and, for large-file-storage files (.safetensors, .gguf),
      x-linked-etag (sha256) + x-linked-size; errors carry X-Error-Code (RepoNotFound, GatedRepo,
      RevisionNotFound, EntryNotFound) as the hub does. Unknown repos answer 401 RepoNotFound, as the hub
      does for anonymous requests.
"""
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serve import serve_until_stdin_closes

ROOT = os.path.abspath(sys.argv[1])
LOG_LOCK = threading.Lock()
CUT_DONE = set()


def config():
    try:
        with open(os.path.join(ROOT, "hub.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def repo_files(repo_dir):
    out = []
    for base, _, files in os.walk(repo_dir):
        for f in files:
            out.append(os.path.relpath(os.path.join(base, f), repo_dir))
    return sorted(out)


def commit_of(repo_dir):
    return hashlib.sha1("\n".join(repo_files(repo_dir)).encode()).hexdigest()


HASHES = {}


def hashes(path, data):
    """(sha256, git blob sha1) of a file's bytes, remembered per (path, size, mtime)."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in HASHES:
        HASHES[key] = (hashlib.sha256(data).hexdigest(),
                       hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
    return HASHES[key]


def is_lfs(name):
    return name.endswith(".safetensors") or name.endswith(".gguf")


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def log(self, status):
        cfg = config()
        auth = self.headers.get("Authorization", "")
        entry = {
            "method": self.command, "path": self.path, "range": self.headers.get("Range"),
            "status": status, "valid_token": bool(cfg.get("token")) and auth == "Bearer " + cfg["token"],
            "any_token": auth.startswith("Bearer "),
        }
        with LOG_LOCK, open(os.path.join(ROOT, "requests.log"), "a") as f:
            f.write(json.dumps(entry) + "\n")

    def error(self, status, code, message):
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.log(status)
        if self.command != "HEAD":
            self.wfile.write(body)

    def check_repo(self, repo):
        """None when the request may see `repo`, else after answering the error."""
        cfg = config()
        repo_dir = os.path.join(ROOT, repo)
        if not os.path.isdir(repo_dir):
            self.error(401, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
            return None
        if repo in cfg.get("gated", []):
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                self.error(401, "GatedRepo", f"Access to model {repo} is restricted. You must have access to it "
                           "and be authenticated to access it. Please log in.")
                return None
            if auth != "Bearer " + cfg.get("token", ""):
                self.error(403, "GatedRepo", f"Access to model {repo} is restricted and you are not in the "
                           "authorized list.")
                return None
        return repo_dir

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            repo = "/".join(parts[2:4])
            repo_dir = self.check_repo(repo)
            if repo_dir is None:
                return
            if parts[5] not in ("main", commit_of(repo_dir)):
                return self.error(404, "RevisionNotFound", f"Invalid rev id: {parts[5]}")
            body = json.dumps({"id": repo, "sha": commit_of(repo_dir),
                               "siblings": [{"rfilename": f} for f in repo_files(repo_dir)]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.log(200)
            self.wfile.write(body)
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, rev, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            repo_dir = self.check_repo(repo)
            if repo_dir is None:
                return
            commit = commit_of(repo_dir)
            if rev not in ("main", commit):
                return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            path = os.path.join(repo_dir, name)
            if not os.path.isfile(path):
                return self.error(404, "EntryNotFound", f"Entry not found: {name}")
            return self.send_file(repo, name, path, commit)
        self.error(404, "NotFound", "not found")

    def send_file(self, repo, name, path, commit):
        cfg = config()
        with open(path, "rb") as f:
            data = f.read()
        sha256, git_sha1 = hashes(path, data)
        key = f"{repo}/{name}"
        if key in cfg.get("corrupt", []):
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[len("bytes="):].partition("-")
            start = int(a)
            end = min(int(b), len(data) - 1) if b else len(data) - 1
        body = data[start:end + 1]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("x-repo-commit", commit)
        self.send_header("ETag", f'"{git_sha1}"')
        if is_lfs(name):
            self.send_header("x-linked-etag", f'"{sha256}"')
            self.send_header("x-linked-size", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return self.log(206 if rng else 200)
        cut = key in cfg.get("cut_once", []) and key not in CUT_DONE and len(body) > 1 and start == 0
        if cut:
            CUT_DONE.add(key)
            self.log("cut")
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.log(206 if rng else 200)
        self.wfile.write(body)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    serve_until_stdin_closes(server)


if __name__ == "__main__":
    main()
