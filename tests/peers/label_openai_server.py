"""A real OpenAI-compatible chat-completions server for tests/label_openai.rs: llama.cpp's own server
(the `xllamacpp` wheel from PyPI, installed by scripts/setup-model) serving a GGUF model on 127.0.0.1.

Usage: python3 label_openai_server.py MODEL.gguf PORT [N_PARALLEL]
Prints `READY http://127.0.0.1:PORT` once it answers, then serves until stdin closes or it is killed.
"""
import sys

import xllamacpp as x


def main():
    model, port = sys.argv[1], int(sys.argv[2])
    parallel = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    p = x.CommonParams()
    p.model.path = model
    p.n_ctx = 2048 * parallel
    p.n_parallel = parallel
    p.port = port
    p.cpuparams.n_threads = 2
    p.cpuparams_batch.n_threads = 2
    server = x.Server(p)
    print("READY", server.listening_address, flush=True)
    sys.stdin.read()  # the test closes stdin (or kills us) to stop the server
    del server


if __name__ == "__main__":
    main()
