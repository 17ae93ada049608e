"""LLaVA-OneVision / LLaVA-Video names (in-memory, llava-hf hub, ``save_pretrained``, lmms-lab) to NNX paths."""

from ottvid_jax.models.params import KeyTable, Transform, decoder_rules

__all__ = ["LLAVA"]

_LAYER = r"vision_tower\.encoder\.layers\.(\d+)"

LLAVA = KeyTable(
    prefixes=(
        (r"^(language_model\.)?lm_head\.", "lm_head."),  # before the LM rule
        (r"^(model\.)?vision_tower\.(vision_tower\.)?(vision_model\.)?", "vision_tower."),
        (r"^(model\.)?multi_modal_projector\.linear_1\.", "projector.linear_1."),
        (r"^model\.mm_projector\.0\.", "projector.linear_1."),
        (r"^(model\.)?multi_modal_projector\.linear_2\.", "projector.linear_2."),
        (r"^model\.mm_projector\.2\.", "projector.linear_2."),
        (r"^(model\.)?image_newline$", "image_newline"),
        (r"^(model\.)?language_model\.(model\.)?", "lm."),
        (r"^model\.", "lm."),  # the lmms-lab LM body
    ),
    rules=(
        (r"vision_tower\.embeddings\.patch_embedding\.weight", "vision_tower.embeddings.patch_embedding.kernel",
         Transform.PATCH),
        (r"vision_tower\.embeddings\.patch_embedding\.bias", "vision_tower.embeddings.patch_embedding.bias",
         Transform.NONE),
        (r"vision_tower\.embeddings\.position_embedding\.weight", "vision_tower.embeddings.position_embedding.embedding",
         Transform.NONE),
        (rf"{_LAYER}\.(layer_norm1|layer_norm2)\.weight", r"vision_tower.encoder.layers.\1.\2.scale", Transform.NONE),
        (rf"{_LAYER}\.(layer_norm1|layer_norm2)\.bias", r"vision_tower.encoder.layers.\1.\2.bias", Transform.NONE),
        (rf"{_LAYER}\.(self_attn\.q_proj|self_attn\.k_proj|self_attn\.v_proj|self_attn\.out_proj|mlp\.fc1|mlp\.fc2)"
         r"\.weight", r"vision_tower.encoder.layers.\1.\2.kernel", Transform.LINEAR),
        (rf"{_LAYER}\.(self_attn\.q_proj|self_attn\.k_proj|self_attn\.v_proj|self_attn\.out_proj|mlp\.fc1|mlp\.fc2)"
         r"\.bias", r"vision_tower.encoder.layers.\1.\2.bias", Transform.NONE),
        (r"projector\.(linear_1|linear_2)\.weight", r"multi_modal_projector.\1.kernel", Transform.LINEAR),
        (r"projector\.(linear_1|linear_2)\.bias", r"multi_modal_projector.\1.bias", Transform.NONE),
        (r"image_newline", "image_newline", Transform.NONE),
        *decoder_rules(),
    ),
    ignore=(r"vision_tower\.post_layernorm\..*", r"vision_tower\.head\..*"),
)
