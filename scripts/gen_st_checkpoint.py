"""Writes a random Gemma-3-shaped HF checkpoint in bf16 (as HF ships Gemma-3) for scripts/bench-st-memory:
config.json, tokenizer.json (byte tokens, Gemma's specials, filler words) and model.safetensors.

Usage: python3 gen_st_checkpoint.py DIR [HIDDEN LAYERS INTER VOCAB]   (default 2048 8 8192 32000: ~0.55B params)
numpy only; bf16 is written as the upper 16 bits of the f32 values.
"""
import json
import os
import struct
import sys

import numpy as np


def main():
    out = sys.argv[1]
    hidden, layers, inter, vocab = (int(x) for x in (sys.argv[2:6] or [2048, 8, 8192, 32000]))
    heads, kv, head_dim = 8, 4, 256
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
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shape in shapes.items():
            x = (rng.standard_normal(shape, dtype=np.float32) * (0.02 if len(shape) == 2 else 0.1))
            f.write((x.view(np.uint32) >> 16).astype(np.uint16).tobytes())
    cfg = {"model_type": "gemma3_text", "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": inter,
           "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
           "sliding_window": 512, "sliding_window_pattern": 6, "query_pre_attn_scalar": head_dim,
           "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rms_norm_eps": 1e-6,
           "max_position_embeddings": 8192}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    toks = [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + [f"w{i}" for i in range(vocab - 6 - 257)]
    tj = {"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, "pre_tokenizer": None,
          "added_tokens": [{"id": i, "content": t, "special": True} for i, t in enumerate(specials)],
          "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                    "vocab": {t: i + 6 for i, t in enumerate(toks)}, "merges": []}}
    json.dump(tj, open(os.path.join(out, "tokenizer.json"), "w"))
    print(f"wrote {out}: {offset / 1e9:.2f} GB of bf16 weights")


if __name__ == "__main__":
    main()
