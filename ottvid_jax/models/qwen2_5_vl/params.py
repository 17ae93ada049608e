"""Qwen2.5-VL checkpoint names (in-memory, hub and ``save_pretrained``) to NNX paths."""

from ottvid_jax.models.params import KeyTable, Transform

__all__ = ["QWEN2_5_VL"]

_LINEAR_VISION = r"(attn\.qkv|attn\.proj|mlp\.gate_proj|mlp\.up_proj|mlp\.down_proj)"
_LINEAR_TEXT = r"(self_attn\.q_proj|self_attn\.k_proj|self_attn\.v_proj|self_attn\.o_proj|mlp\.gate_proj|mlp\.up_proj|mlp\.down_proj)"

QWEN2_5_VL = KeyTable(
    prefixes=(
        (r"^(model\.)?visual\.", "visual."),
        (r"^model\.language_model\.", "lm."),
        (r"^model\.", "lm."),
        (r"^lm_head\.", "lm_head."),
    ),
    rules=(
        (r"visual\.patch_embed\.proj\.weight", "visual.patch_embed.proj.kernel", Transform.PATCH),
        (r"visual\.blocks\.(\d+)\.(norm1|norm2)\.weight", r"visual.blocks.\1.\2.weight", Transform.NONE),
        (rf"visual\.blocks\.(\d+)\.{_LINEAR_VISION}\.weight", r"visual.blocks.\1.\2.kernel", Transform.LINEAR),
        (rf"visual\.blocks\.(\d+)\.{_LINEAR_VISION}\.bias", r"visual.blocks.\1.\2.bias", Transform.NONE),
        (r"visual\.merger\.ln_q\.weight", "visual.merger.ln_q.weight", Transform.NONE),
        (r"visual\.merger\.mlp\.0\.weight", "visual.merger.mlp.0.kernel", Transform.LINEAR),
        (r"visual\.merger\.mlp\.0\.bias", "visual.merger.mlp.0.bias", Transform.NONE),
        (r"visual\.merger\.mlp\.2\.weight", "visual.merger.mlp.1.kernel", Transform.LINEAR),
        (r"visual\.merger\.mlp\.2\.bias", "visual.merger.mlp.1.bias", Transform.NONE),
        (r"lm\.embed_tokens\.weight", "language_model.embed_tokens.embedding", Transform.NONE),
        (r"lm\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.weight",
         r"language_model.layers.\1.\2.weight", Transform.NONE),
        (rf"lm\.layers\.(\d+)\.{_LINEAR_TEXT}\.weight", r"language_model.layers.\1.\2.kernel", Transform.LINEAR),
        (rf"lm\.layers\.(\d+)\.{_LINEAR_TEXT}\.bias", r"language_model.layers.\1.\2.bias", Transform.NONE),
        (r"lm\.norm\.weight", "language_model.norm.weight", Transform.NONE),
        (r"lm_head\.weight", "lm_head.kernel", Transform.LINEAR),
    ),
)
