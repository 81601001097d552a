"""The run loop the test peers' HTTP servers share: announce the port, serve until the test closes stdin.

The Rust test reads `READY <port>` from the peer's stdout before its first request, and closes the peer's
stdin (or kills it) to stop it.
"""
import sys
import threading


def serve_until_stdin_closes(server):
    """Prints `READY <port>`, serves on a daemon thread, and shuts the server down when stdin ends."""
    print("READY", server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()
