"""Qwen2.5-VL checkpoint names (in-memory, hub and ``save_pretrained``) to NNX paths."""

import dataclasses

from ottvid_jax.models.params import KeyTable, Transform, decoder_rules, fused_rules

__all__ = ["QWEN2_5_VL", "table_for"]

_VISION = r"visual\.blocks\.(\d+)"
_VISION_MLP = r"visual\.blocks\.\d+\.mlp\.(gate_up_proj|down_proj)\.(kernel|bias)"

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
        *fused_rules(rf"{_VISION}\.mlp", r"visual.blocks.\1.mlp", "gate_up_proj", ("gate_proj", "up_proj"),
                     bias=True),
        (r"visual\.merger\.ln_q\.weight", "visual.merger.ln_q.weight", Transform.NONE),
        (r"visual\.merger\.mlp\.0\.weight", "visual.merger.mlp.0.kernel", Transform.LINEAR),
        (r"visual\.merger\.mlp\.0\.bias", "visual.merger.mlp.0.bias", Transform.NONE),
        (r"visual\.merger\.mlp\.2\.weight", "visual.merger.mlp.1.kernel", Transform.LINEAR),
        (r"visual\.merger\.mlp\.2\.bias", "visual.merger.mlp.1.bias", Transform.NONE),
        *decoder_rules(),
    ),
)


def table_for(vision_intermediate_size: int) -> KeyTable:
  """:data:`QWEN2_5_VL` with the vision MLP's zero padding (``layers.MLP(pad=True)``) of a checkpoint whose
  vision MLP is ``vision_intermediate_size`` wide."""
  return dataclasses.replace(QWEN2_5_VL, padded=((_VISION_MLP, vision_intermediate_size),))
