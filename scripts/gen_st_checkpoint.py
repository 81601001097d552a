"""Writes a random Gemma-3-shaped HF checkpoint in bf16 (as HF ships Gemma-3) for scripts/bench-st-memory:
config.json, tokenizer.json (byte tokens, Gemma's specials, filler words) and model.safetensors.

Usage: python3 gen_st_checkpoint.py DIR [SHAPE]
SHAPE: small (default; 2048 hidden, 8 layers, 32k vocab: ~0.55B params), 1b, 4b or 12b (the text model shapes of
Gemma-3 1B / 4B / 12B: hidden, layers, MLP width, heads, KV heads, head_dim, vocabulary).
numpy only. The values are N(0, 0.02^2) (norms N(0, 0.1^2)) drawn once into a pool of 16M values that every
tensor reads from a random offset: a 24 GB 12B file is written in minutes, and the weights still vary.
"""
import json
import os
import struct
import sys

import numpy as np

SHAPES = {  # hidden, layers, inter, heads, kv heads, head_dim, vocab
    "small": (2048, 8, 8192, 8, 4, 256, 32000),
    "1b": (1152, 26, 6912, 4, 1, 256, 262144),
    "4b": (2560, 34, 10240, 8, 4, 256, 262208),
    "12b": (3840, 48, 15360, 16, 8, 256, 262208),
}


def main():
    out = sys.argv[1]
    shape_name = sys.argv[2] if len(sys.argv) > 2 else "small"
    hidden, layers, inter, heads, kv, head_dim, vocab = SHAPES[shape_name]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
            p + "pre_feedforward_layernorm.weight": (hidden,), p + "post_feedforward_layernorm.weight": (hidden,),
            p + "self_attn.q_proj.weight": (heads * head_dim, hidden), p + "self_attn.k_proj.weight": (kv * head_dim, hidden),
            p + "self_attn.v_proj.weight": (kv * head_dim, hidden), p + "self_attn.o_proj.weight": (hidden, heads * head_dim),
            p + "self_attn.q_norm.weight": (head_dim,), p + "self_attn.k_norm.weight": (head_dim,),
            p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
            p + "mlp.down_proj.weight": (hidden, inter),
        })
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    pool_n = 1 << 24
    to_bf16 = lambda x: (x.view(np.uint32) >> 16).astype(np.uint16)
    pool = to_bf16(rng.standard_normal(pool_n, dtype=np.float32) * 0.02)
    norm_pool = to_bf16(rng.standard_normal(pool_n, dtype=np.float32) * 0.1)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shape in shapes.items():
            src = norm_pool if len(shape) == 1 else pool
            left = int(np.prod(shape))
            while left:
                at = int(rng.integers(0, pool_n))
                n = min(left, pool_n - at)
                f.write(src[at:at + n].tobytes())
                left -= n
    cfg = {"model_type": "gemma3_text", "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": inter,
           "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
           "sliding_window": 512, "sliding_window_pattern": 6, "query_pre_attn_scalar": head_dim,
           "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rms_norm_eps": 1e-6,
           "max_position_embeddings": 8192}
    if shape_name in ("4b", "12b"):
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": 8.0}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    toks = [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + [f"w{i}" for i in range(vocab - 6 - 257)]
    tj = {"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, "pre_tokenizer": None,
          "added_tokens": [{"id": i, "content": t, "special": True} for i, t in enumerate(specials)],
          "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                    "vocab": {t: i + 6 for i, t in enumerate(toks)}, "merges": []}}
    json.dump(tj, open(os.path.join(out, "tokenizer.json"), "w"))
    print(f"wrote {out}: {shape_name} shapes, {offset / 1e9:.2f} GB of bf16 weights")


if __name__ == "__main__":
    main()
