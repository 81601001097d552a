"""An OpenAI-compatible chat-completions server over TLS on 127.0.0.1 for tests/label_openai_tls.rs.

Usage: python3 openai_tls_server.py DIR API_KEY
Makes a throw-away CA and a server certificate for 127.0.0.1 in DIR with the `openssl` command line
(DIR/ca.pem is what the client must trust), then serves https and prints `READY <port>`.

GET /v1/models and POST /v1/chat/completions need `Authorization: Bearer API_KEY`; a wrong key gets 401
with the header quoted back in the body (as some servers do), so the client must not repeat it. The
answer is the moderation JSON decided by keyword rules on the review text in the last user message (a URL
or "coupon" -> ADS, "never been" -> NON_VISIT_RANT), enough to check the transport and the
parse end to end. One JSON line per request goes to DIR/requests.log (path, status, response_format type).
"""
import json
import os
import ssl
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serve import serve_until_stdin_closes

DIR = os.path.abspath(sys.argv[1])
KEY = sys.argv[2]


def make_certs():
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", f"{DIR}/ca.key", "-out", f"{DIR}/ca.pem", "-days", "2",
        "-subj", "/CN=revmod test CA")
    run("req", *ec, "-keyout", f"{DIR}/server.key", "-out", f"{DIR}/server.csr", "-subj", "/CN=127.0.0.1")
    with open(f"{DIR}/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", f"{DIR}/server.csr", "-CA", f"{DIR}/ca.pem", "-CAkey", f"{DIR}/ca.key",
        "-CAcreateserial", "-out", f"{DIR}/server.pem", "-days", "2", "-extfile", f"{DIR}/ext.cnf")


def answer_for(text):
    t = text.lower()
    violations = []
    if "http" in t or "www." in t or "coupon" in t:
        violations.append("ADS")
    if "never been" in t:
        violations.append("NON_VISIT_RANT")
    return {"is_relevant": not violations, "violations": violations, "rationale": "keyword rules"}


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, status, extra=None):
        entry = {"method": self.command, "path": self.path, "status": status, **(extra or {})}
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write(json.dumps(entry) + "\n")

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if auth == "Bearer " + KEY:
            return True
        self.log(401)
        self.reply(401, {"error": {"message": f"Incorrect API key provided in header: {auth!r}", "type": "invalid_request_error"}})
        return False

    def do_GET(self):
        if self.path != "/v1/models":
            return self.reply(404, {"error": "not found"})
        if self.authorized():
            self.log(200)
            self.reply(200, {"object": "list", "data": [{"id": "gemma-3-12b-it", "object": "model"}]})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": "not found"})
        if not self.authorized():
            return
        user = [m for m in body.get("messages", []) if m.get("role") == "user"]
        if not body.get("model") or not user:
            self.log(400)
            return self.reply(400, {"error": {"message": "model and a user message are required"}})
        review = user[-1]["content"].rsplit("Review text:", 1)[-1]
        content = json.dumps(answer_for(review))
        # logged before the reply: a client that has its answer always finds its request in the log
        self.log(200, {"response_format": (body.get("response_format") or {}).get("type")})
        self.reply(200, {"id": "chatcmpl-test", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": content}}]})


def main():
    make_certs()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{DIR}/server.pem", f"{DIR}/server.key")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    serve_until_stdin_closes(server)


if __name__ == "__main__":
    main()
