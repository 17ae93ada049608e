"""The shipped backbones' registry entries: Qwen2.5-VL, LLaVA-Video and LLaVA-OneVision.

Each entry imports its backbone's modules when first used, so that
``import ottvid_jax.models`` stays light.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.models.params import load_into
from ottvid_jax.models.registry import Backbone, register

__all__ = []


def _build(model_class, cfg, table, files, dtype, ignore: tuple = ()):
  """Loads ``files`` into ``model_class(cfg)``; a tied LM head's checkpoint copy is ignored."""
  if cfg.tie_word_embeddings:
    ignore += (r"lm_head\.weight",)
  table = dataclasses.replace(table, ignore=tuple(table.ignore) + ignore)
  return load_into(lambda: model_class(cfg, dtype=dtype, param_dtype=dtype, rngs=nnx.Rngs(0)), files, table, dtype)


def _attribute(module: str, name: str) -> Any:
  """``module.name``, the module imported when first asked for."""
  return getattr(importlib.import_module(module), name)


_QWEN = "ottvid_jax.models.qwen2_5_vl"
_LLAVA_MODULE = "ottvid_jax.models.llava_onevision"

# Qwen2.5-VL ---------------------------------------------------------------------------------------------------


def _qwen_config(config: dict):
  return _attribute(f"{_QWEN}.model", "Qwen2_5_VLConfig").from_hf(config)


def _qwen_build(config: dict, files, dtype):
  from ottvid_jax.models.qwen2_5_vl.params import table_for  # pylint: disable=import-outside-toplevel

  cfg = _qwen_config(config)
  return _build(_attribute(f"{_QWEN}.model", "Qwen2_5_VL"), cfg, table_for(cfg.vision.intermediate_size), files, dtype)


def _qwen_processor(checkpoint_dir: str, config):
  return _attribute(f"{_QWEN}.processing", "QwenProcessor").from_checkpoint(checkpoint_dir, config)


def _qwen_demo_tokens(model, batch):
  """One compressor frame per temporal patch (two video frames), on the merged token grid."""
  dtype = model.language_model.embed_tokens.embedding.dtype
  (t, h, w), = batch.video_grid_thw
  merge = model.config.vision.spatial_merge_size
  tokens, saliency = jax.jit(lambda p: model.visual(p, ((t, h, w),)))(jnp.asarray(batch.pixel_values_videos, dtype))
  gh, gw = h // merge, w // merge
  patch = model.config.vision.patch_size
  return (np.asarray(tokens, np.float32).reshape(t, gh * gw, -1), np.asarray(saliency).reshape(t, gh * gw),
          (gh, gw), (h * patch, w * patch), model.config.vision.temporal_patch_size)


# LLaVA-OneVision and LLaVA-Video -----------------------------------------------------------------------------


def _llava_config(config: dict):
  return _attribute(f"{_LLAVA_MODULE}.model", "LlavaConfig").from_hf(config)


def _llava_build(config: dict, files, dtype):
  from ottvid_jax.models.llava_onevision.params import LLAVA  # pylint: disable=import-outside-toplevel

  cfg = _llava_config(config)
  layers_in_file = (config.get("vision_config") or {}).get("num_hidden_layers", 27)
  unused = [str(i) for i in range(cfg.vision.feature_layers, max(layers_in_file, 27))]
  # Layers after the feature layer never run.
  ignore = (rf"vision_tower\.encoder\.layers\.({'|'.join(unused)})\..*",) if unused else ()
  return _build(_attribute(f"{_LLAVA_MODULE}.model", "LlavaOnevision"), cfg, LLAVA, files, dtype, ignore)


def _llava_processor(checkpoint_dir: str, config):
  return _attribute(f"{_LLAVA_MODULE}.generation", "LlavaProcessor").from_checkpoint(checkpoint_dir, config)


def _llava_demo_tokens(model, batch):
  """One compressor frame per video frame, on the pooled grid."""
  dtype = model.language_model.embed_tokens.embedding.dtype
  size, o = model.config.vision.image_size, model.config.pooled
  pixels = jnp.asarray(batch.pixel_values_videos, dtype)
  tokens, saliency = jax.jit(lambda p: model.video_features(p, saliency=True))(pixels)
  return np.asarray(tokens, np.float32), np.asarray(saliency), (o, o), (size, size), 1


_LLAVA = dict(
    architectures=("LlavaOnevisionForConditionalGeneration", "llava_onevision",
                   "LlavaQwenForCausalLM"),  # the last: the original lmms-lab checkpoints
    parse=_llava_config, model=lambda: _attribute(f"{_LLAVA_MODULE}.model", "LlavaOnevision"), build=_llava_build,
    processor=_llava_processor,
    generate=lambda *a, **k: _attribute(f"{_LLAVA_MODULE}.generation", "generate")(*a, **k),
    demo_tokens=_llava_demo_tokens)

register(Backbone(
    name="qwen2_5_vl", architectures=("Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl"), parse=_qwen_config,
    matches=lambda cfg: True, model=lambda: _attribute(f"{_QWEN}.model", "Qwen2_5_VL"), build=_qwen_build,
    processor=_qwen_processor, generate=lambda *a, **k: _attribute(f"{_QWEN}.generation", "generate")(*a, **k),
    demo_tokens=_qwen_demo_tokens))
# LLaVA-Video's checkpoints are LLaVA-OneVision's architecture with a newline after each frame's grid
# (mm_newline_position "grid"); LLaVA-OneVision's put one after the whole video.
register(Backbone(name="llava_vid", matches=lambda cfg: cfg.newline == "grid", **_LLAVA))
register(Backbone(name="llava_onevision", matches=lambda cfg: cfg.newline != "grid", **_LLAVA))
