"""Qwen2.5-VL checkpoint names (in-memory, hub and ``save_pretrained``) to NNX paths."""

from ottvid_jax.models.params import KeyTable, Transform

__all__ = ["QWEN2_5_VL"]

_PART = {"q_proj": "0/3", "k_proj": "1/3", "v_proj": "2/3", "gate_proj": "0/2", "up_proj": "1/2"}


def _fused(prefix: str, target: str, fused_name: str, names: tuple[str, ...], bias: bool):
  """Rules that put HF's separate projections into one fused NNX projection."""
  rules = []
  for name in names:
    part = _PART[name]
    rules.append((rf"{prefix}\.{name}\.weight", rf"{target}.{fused_name}.kernel#{part}", Transform.LINEAR))
    if bias:
      rules.append((rf"{prefix}\.{name}\.bias", rf"{target}.{fused_name}.bias#{part}", Transform.NONE))
  return tuple(rules)


_VISION = r"visual\.blocks\.(\d+)"
_TEXT = r"lm\.layers\.(\d+)"

QWEN2_5_VL = KeyTable(
    prefixes=(
        (r"^(model\.)?visual\.", "visual."),
        (r"^model\.language_model\.", "lm."),
        (r"^model\.", "lm."),
        (r"^lm_head\.", "lm_head."),
    ),
    rules=(
        (r"visual\.patch_embed\.proj\.weight", "visual.patch_embed.proj.kernel", Transform.PATCH),
        (rf"{_VISION}\.(norm1|norm2)\.weight", r"visual.blocks.\1.\2.weight", Transform.NONE),
        (rf"{_VISION}\.(attn\.qkv|attn\.proj|mlp\.down_proj)\.weight", r"visual.blocks.\1.\2.kernel",
         Transform.LINEAR),
        (rf"{_VISION}\.(attn\.qkv|attn\.proj|mlp\.down_proj)\.bias", r"visual.blocks.\1.\2.bias", Transform.NONE),
        *_fused(rf"{_VISION}\.mlp", r"visual.blocks.\1.mlp", "gate_up_proj", ("gate_proj", "up_proj"), bias=True),
        (r"visual\.merger\.ln_q\.weight", "visual.merger.ln_q.weight", Transform.NONE),
        (r"visual\.merger\.mlp\.0\.weight", "visual.merger.mlp.0.kernel", Transform.LINEAR),
        (r"visual\.merger\.mlp\.0\.bias", "visual.merger.mlp.0.bias", Transform.NONE),
        (r"visual\.merger\.mlp\.2\.weight", "visual.merger.mlp.1.kernel", Transform.LINEAR),
        (r"visual\.merger\.mlp\.2\.bias", "visual.merger.mlp.1.bias", Transform.NONE),
        (r"lm\.embed_tokens\.weight", "language_model.embed_tokens.embedding", Transform.NONE),
        (rf"{_TEXT}\.(input_layernorm|post_attention_layernorm)\.weight", r"language_model.layers.\1.\2.weight",
         Transform.NONE),
        *_fused(rf"{_TEXT}\.self_attn", r"language_model.layers.\1.self_attn", "qkv_proj",
                ("q_proj", "k_proj", "v_proj"), bias=True),
        (rf"{_TEXT}\.self_attn\.o_proj\.weight", r"language_model.layers.\1.self_attn.o_proj.kernel",
         Transform.LINEAR),
        *_fused(rf"{_TEXT}\.mlp", r"language_model.layers.\1.mlp", "gate_up_proj", ("gate_proj", "up_proj"),
                bias=False),
        (rf"{_TEXT}\.mlp\.down_proj\.weight", r"language_model.layers.\1.mlp.down_proj.kernel", Transform.LINEAR),
        (r"lm\.norm\.weight", "language_model.norm.weight", Transform.NONE),
        (r"lm_head\.weight", "lm_head.kernel", Transform.LINEAR),
    ),
)
