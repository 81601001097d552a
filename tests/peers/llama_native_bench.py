#!/usr/bin/env python3
"""llama.cpp built from source for this CPU (llama-cpp-python compiled with GGML_NATIVE=ON by scripts/bench-llm-native):
prefill and decode tokens/s on one prompt, one run: from llama.cpp's own counters (llama_perf_context) when they
were kept, else from the wall clock around the same calls (llama-cpp-python's context may be created with
no_perf, which leaves the counters' times at zero: seen with 0.3.36); "timing" says which.

usage: llama_native_bench.py MODEL THREADS PROMPT.txt GEN_TOKENS   -> one JSON document on stdout
Same settings as tests/peers/llama_peer.py's bench (n_ctx 4096, n_batch 2048, n_ubatch 512, f16 KV cache,
a warm-up decode first, greedy decoding that ignores end-of-generation tokens).
"""
import json
import sys
import time

import llama_cpp


def main():
    model, threads, prompt_file, n_gen = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    llm = llama_cpp.Llama(model_path=model, n_ctx=4096, n_batch=2048, n_ubatch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    prompt = open(prompt_file, encoding="utf-8").read()
    toks = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    # warm-up (as llama.cpp's server does), then count from zero
    llm.eval(toks[:2])
    llm.reset()  # the next eval drops the cached positions from 0 on
    llama_cpp.llama_perf_context_reset(llm.ctx)
    t0 = time.perf_counter()
    llm.eval(toks)
    t1 = time.perf_counter()
    for _ in range(n_gen - 1):
        tok = int(llm.scores[llm.n_tokens - 1].argmax())
        llm.eval([tok])
    t2 = time.perf_counter()
    p = llama_cpp.llama_perf_context(llm.ctx)
    if p.t_p_eval_ms > 0 and p.t_eval_ms > 0 and p.n_p_eval > 0:
        timing = "llama_perf_context"
        pre_n, pre_ms, dec_n, dec_ms = p.n_p_eval, p.t_p_eval_ms, p.n_eval, p.t_eval_ms
    else:
        timing = "wall clock"
        pre_n, pre_ms, dec_n, dec_ms = len(toks), (t1 - t0) * 1e3, n_gen - 1, (t2 - t1) * 1e3
    json.dump({
        "prefill_tokens": pre_n, "prefill_tok_s": pre_n / pre_ms * 1e3,
        "decode_tokens": dec_n, "decode_tok_s": dec_n / dec_ms * 1e3, "timing": timing,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "version": llama_cpp.__version__,
    }, sys.stdout)


if __name__ == "__main__":
    main()
