#!/usr/bin/env python3
"""llama.cpp peer for revmod's Gemma-3 checks, through `xllamacpp` (PyPI: a prebuilt llama.cpp wheel that embeds
llama.cpp's own server; see tests/peers/LLAMA.md).

Subcommands (all print one JSON document on stdout; llama.cpp's log goes to stderr):
  texts N                      N real review texts from ../shared/data (every Utah text with emoji, accents, URLs or
                               whitespace runs first, then an even spread of the 40k CSV texts), followed by N/5
                               variants of real texts with emoji, accents, non-Latin script, URLs and whitespace
                               runs inserted (the real data has few of those); deterministic
  tokenize MODEL IN.json       IN.json: list of texts -> list of token-id lists (add_special, parse_special)
  greedy MODEL IN.json K N     IN.json: list of prompts -> per prompt the N greedy tokens and, per position,
                               the top-K (id, logprob) of llama.cpp
  bench MODEL THREADS PROMPT.txt GEN_TOKENS
                               prefill and decode tokens/s of llama.cpp (its own timings), one run, with
                               llama.cpp's system info (the CPU features its build uses)
  serve MODEL PORT             an OpenAI-compatible llama.cpp server on 127.0.0.1:PORT until killed
"""
import csv
import json
import os
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data")


def server(model, threads=2, port=0, n_ctx=4096, n_parallel=1):
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = model
    p.n_ctx = n_ctx
    p.n_parallel = n_parallel  # slots (continuous batching over them)
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.n_batch = 2048
    p.n_ubatch = int(os.environ.get("REVMOD_LLAMA_UBATCH", "512"))
    p.warmup = True
    if os.environ.get("REVMOD_LLAMA_F32_KV"):
        # full-precision KV cache (llama.cpp's default is f16), for tight numerical comparisons
        p.cache_type_k = xlc.ggml_type.GGML_TYPE_F32
        p.cache_type_v = xlc.ggml_type.GGML_TYPE_F32
    if port:
        p.port = port
    return xlc.Server(p)


def post(srv, path, body):
    addr = srv.listening_address
    if not addr.startswith("http"):
        addr = "http://" + addr
    req = urllib.request.Request(addr + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def texts(n):
    rows = []
    for part in sorted(os.listdir(os.path.join(DATA, "reviews-40k"))):
        with open(os.path.join(DATA, "reviews-40k", part), newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                t = row.get("text") or ""
                if t.strip():
                    rows.append(t)
    with open(os.path.join(DATA, "google-local-utah", "review-Utah.sample.json"), encoding="utf-8") as f:
        for line in f:
            try:
                t = json.loads(line).get("text")
            except ValueError:
                continue
            if t:
                rows.append(t)
    kinds = {
        "emoji": lambda t: any(ord(c) > 0xFFFF for c in t),
        "accents": lambda t: any(0xC0 <= ord(c) <= 0x24F for c in t),
        "url": lambda t: "http" in t or "www." in t,
        "spaces": lambda t: "  " in t or "\n" in t or "\t" in t,
        "nonlatin": lambda t: any(0x0400 <= ord(c) <= 0x9FFF for c in t),
    }
    chosen, seen = [], set()
    per_kind = n // 10
    for k, pred in kinds.items():
        got = 0
        for t in rows:
            if got >= per_kind:
                break
            if t not in seen and pred(t):
                chosen.append(t)
                seen.add(t)
                got += 1
    step = max(1, len(rows) // n)
    i = 0
    while len(chosen) < n and i < len(rows):
        if rows[i] not in seen:
            chosen.append(rows[i])
            seen.add(rows[i])
        i += step
    chosen = chosen[:n]
    inserts = [" 😀👍🏽 ", " café crème, señor, naïve ", " 東京のラーメン最高 ", " https://example.com/menu?a=1&b=2 ",
               "   \n\n\t  ", " ❤️ 5/5 ⭐⭐⭐⭐⭐ ", " Привет! ", " 🍕🍔🍟 www.pizza.example ", "\u00a0non-breaking\u00a0space ",
               " مرحبا ", " ½ price — “quoted” … ", "!!!!!!!!!!"]
    variants = []
    for i in range(n // 5):
        base = chosen[(i * 7919) % len(chosen)]
        at = (i * 31) % (len(base) + 1)
        variants.append(base[:at] + inserts[i % len(inserts)] + base[at:])
    return chosen + variants


def main():
    cmd = sys.argv[1]
    if cmd == "texts":
        json.dump(texts(int(sys.argv[2])), sys.stdout, ensure_ascii=False)
    elif cmd == "tokenize":
        srv = server(sys.argv[2])
        items = json.load(open(sys.argv[3], encoding="utf-8"))
        out = [post(srv, "/tokenize", {"content": t, "add_special": True, "parse_special": True})["tokens"] for t in items]
        json.dump(out, sys.stdout)
    elif cmd == "greedy":
        srv = server(sys.argv[2])
        prompts = json.load(open(sys.argv[3], encoding="utf-8"))
        k, n = int(sys.argv[4]), int(sys.argv[5])
        out = []
        for p in prompts:
            r = srv.handle_completions({
                "prompt": p, "n_predict": n, "temperature": 0, "top_k": 1, "n_probs": k,
                "cache_prompt": False, "ignore_eos": True, "return_tokens": True,
            })
            content = r["choices"][0]["logprobs"]["content"]
            out.append({
                "tokens": [c["id"] for c in content],
                "top": [[[t["id"], t["logprob"]] for t in c["top_logprobs"]] for c in content],
            })
        json.dump(out, sys.stdout)
    elif cmd == "bench":
        model, threads, n_gen = sys.argv[2], int(sys.argv[3]), int(sys.argv[5])
        prompt = open(sys.argv[4], encoding="utf-8").read()
        srv = server(model, threads=threads)
        r = srv.handle_completions({"prompt": prompt, "n_predict": n_gen, "temperature": 0, "ignore_eos": True, "cache_prompt": False})
        t = r["timings"]
        import xllamacpp as xlc

        json.dump({"prefill_tokens": t["prompt_n"], "prefill_tok_s": t["prompt_per_second"],
                   "decode_tokens": t["predicted_n"], "decode_tok_s": t["predicted_per_second"],
                   "system_info": xlc.get_system_info().strip()}, sys.stdout)
    elif cmd == "serve":
        srv = server(sys.argv[2], port=int(sys.argv[3]))
        print(json.dumps({"listening": srv.listening_address}), flush=True)
        while True:
            time.sleep(3600)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
