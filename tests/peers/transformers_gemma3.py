"""Reference logits of Hugging Face transformers' Gemma-3 for tests/llm_transformers_parity.rs.

Usage: transformers_gemma3.py OUTDIR     (needs torch + transformers: scripts/setup with REVMOD_SLOW=1 installs them
into $REVMOD_CACHE/venv-torch)

Builds tiny random Gemma-3 models whose configs switch on every feature of the 12B/27B (several KV heads, linear
RoPE scaling x8 on the global layers with rope_local_base_freq on the local ones, query_pre_attn_scalar !=
head_dim, a sliding window shorter than the prompt, the 5:1 local:global pattern over 6+ layers, tied
embeddings), saves each with save_pretrained (safetensors + config.json) plus a tokenizer.json in OUTDIR/NAME,
and prints one JSON object: per model the prompt ids, the logits of every prompt position (eager attention,
f32) and the greedy continuation of `model.generate`.

Models:
- `12b`: Gemma3ForCausalLM, 4 query / 2 KV heads, head_dim 32, query_pre_attn_scalar 48, window 7, 7 layers.
- `27b`: Gemma3ForCausalLM, 6 query / 2 KV heads, query_pre_attn_scalar = hidden / heads (as the 27B), window
  4, 12 layers (two 5:1 groups).
- `12b-legacy`: the `12b` weights with a config.json written as the 12B's on the hub is (rope_theta,
  rope_local_base_freq, rope_scaling, sliding_window_pattern; no layer_types / rope_parameters): the same
  reference logits.
- `mm`: Gemma3ForConditionalGeneration (the 4B/12B/27B `-it` layout: text model under language_model.model.*,
  a SigLIP vision tower and projector in the same file), text-only forward.
- `mm-new-names`: the `mm` tensors under model.language_model.*, model.vision_tower.*, ...
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import Gemma3Config, Gemma3ForCausalLM, Gemma3ForConditionalGeneration, Gemma3TextConfig

VOCAB = 300
PROMPT_LEN = 24
NEW_TOKENS = 8


def write_tokenizer(out):
    """A Gemma-style BPE tokenizer.json (specials, byte fallback, filler words) with VOCAB tokens."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    toks = [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + [f"w{i}" for i in range(VOCAB - len(specials) - 257)]
    tj = {"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, "pre_tokenizer": None,
          "added_tokens": [{"id": i, "content": t, "special": True} for i, t in enumerate(specials)],
          "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                    "vocab": {t: i + len(specials) for i, t in enumerate(toks)}, "merges": []}}
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tj, f)


def randomize(model, seed):
    """Weights large enough that every part of the network moves the logits: matrices ~ N(0, 1/fan_in) * 1.5,
    RMSNorm weights ~ N(0, 0.3) (the model scales by 1 + w), the embedding ~ N(0, 0.15^2) (after the x sqrt(hidden)
    input scale the residual stream is about as large as each layer's output, so every layer counts)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.15)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p.shape[-1] ** 0.5))


def text_config(**kw):
    base = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=7, num_attention_heads=4,
                num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=48, sliding_window=7,
                sliding_window_pattern=6, rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
                rope_scaling={"rope_type": "linear", "factor": 8.0}, max_position_embeddings=4096,
                tie_word_embeddings=True, attn_implementation="eager")
    base.update(kw)
    return Gemma3TextConfig(**base)


def reference(model, text_only_forward):
    g = torch.Generator().manual_seed(7)
    prompt = [2] + torch.randint(6, VOCAB, (PROMPT_LEN - 1,), generator=g).tolist()
    ids = torch.tensor([prompt])
    with torch.no_grad():
        logits = text_only_forward(ids)[0].float()
        out = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, min_new_tokens=NEW_TOKENS,
                             eos_token_id=None, pad_token_id=0)
    return {"prompt": prompt, "logits": logits.tolist(), "greedy": out[0, len(prompt):].tolist()}


def legacy_config_json(cfg_dict, text):
    """The 12B's hub config.json style for the same model: no layer_types / rope_parameters."""
    d = {k: v for k, v in cfg_dict.items() if k not in ("layer_types", "rope_parameters", "sliding_window_pattern")}
    d.update(rope_theta=text.rope_parameters["full_attention"]["rope_theta"],
             rope_local_base_freq=text.rope_parameters["sliding_attention"]["rope_theta"],
             rope_scaling={"rope_type": "linear", "factor": text.rope_parameters["full_attention"]["factor"]},
             sliding_window_pattern=6)
    return d


def save(model, out):
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    write_tokenizer(out)


def main():
    root = sys.argv[1]
    torch.set_default_dtype(torch.float32)
    result = {}

    # 12B-like: 4 q / 2 kv heads, qpas 48 != head_dim 32, window 7 < prompt 24, x8 linear RoPE on globals
    m = Gemma3ForCausalLM(text_config()).eval()
    randomize(m, 1)
    save(m, os.path.join(root, "12b"))
    result["12b"] = reference(m, lambda ids: m(ids).logits)
    # the same weights with the hub's older config.json form
    legacy = os.path.join(root, "12b-legacy")
    os.makedirs(legacy, exist_ok=True)
    with open(os.path.join(root, "12b", "config.json")) as f:
        d = json.load(f)
    with open(os.path.join(legacy, "config.json"), "w") as f:
        json.dump(legacy_config_json(d, m.config), f, indent=1)
    for name in ("model.safetensors", "tokenizer.json"):
        os.link(os.path.join(root, "12b", name), os.path.join(legacy, name))
    result["12b-legacy"] = result["12b"]

    # 27B-like: 6 q / 2 kv heads (3 queries per KV head), qpas = hidden / heads, 12 layers, window 4
    cfg27 = text_config(hidden_size=96, num_attention_heads=6, num_key_value_heads=2, head_dim=32,
                        query_pre_attn_scalar=96 // 6, num_hidden_layers=12, sliding_window=4,
                        intermediate_size=192)
    m = Gemma3ForCausalLM(cfg27).eval()
    randomize(m, 2)
    save(m, os.path.join(root, "27b"))
    result["27b"] = reference(m, lambda ids: m(ids).logits)

    # multimodal layout (Gemma3ForConditionalGeneration): text model + a tiny SigLIP tower and projector
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                  patch_size=14, model_type="siglip_vision_model")
    mm_cfg = Gemma3Config(text_config=text_config().to_dict(), vision_config=vision, mm_tokens_per_image=4,
                          image_token_index=VOCAB - 1, boi_token_index=VOCAB - 3, eoi_token_index=VOCAB - 2,
                          attn_implementation="eager")
    m = Gemma3ForConditionalGeneration(mm_cfg).eval()
    randomize(m, 3)
    out = os.path.join(root, "mm")
    save(m, out)
    result["mm"] = reference(m, lambda ids: m(input_ids=ids).logits)
    # save_pretrained writes the hub's naming (language_model.model.*, vision_tower.*, multi_modal_projector.*);
    # the same tensors under the in-memory naming of transformers >= 4.52 (model.language_model.*,
    # model.vision_tower.*, ...), which some exports write
    tensors = load_file(os.path.join(out, "model.safetensors"))
    assert any(k.startswith("language_model.model.") for k in tensors), sorted(tensors)[:5]
    assert any(k.startswith("vision_tower.") for k in tensors), sorted(tensors)[:5]
    new = os.path.join(root, "mm-new-names")
    os.makedirs(new, exist_ok=True)
    renamed = {}
    for k, v in tensors.items():
        if k.startswith("language_model.model."):
            k = "model.language_model." + k[len("language_model.model."):]
        else:
            k = "model." + k
        renamed[k] = v
    save_file(renamed, os.path.join(new, "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "tokenizer.json"):
        os.link(os.path.join(out, name), os.path.join(new, name))
    result["mm-new-names"] = result["mm"]
    result["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
