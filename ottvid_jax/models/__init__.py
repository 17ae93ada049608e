"""Backbones in Flax NNX and ``load``, which reads a Hugging Face checkpoint folder."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import nnx

from ottvid_jax.models.params import CheckpointError, checkpoint_files, load_into, read_config

__all__ = ["CheckpointError", "load"]


def _build(model_class, cfg, table, files, dtype, ignore: tuple = ()):
  """Loads ``files`` into ``model_class(cfg)``; a tied LM head's checkpoint copy is ignored."""
  if cfg.tie_word_embeddings:
    ignore += (r"lm_head\.weight",)
  table = dataclasses.replace(table, ignore=tuple(table.ignore) + ignore)
  return load_into(lambda: model_class(cfg, dtype=dtype, param_dtype=dtype, rngs=nnx.Rngs(0)), files, table, dtype)


def _qwen2_5_vl(config: dict, files, dtype):
  from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VL, Qwen2_5_VLConfig  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.qwen2_5_vl.params import table_for  # pylint: disable=import-outside-toplevel

  cfg = Qwen2_5_VLConfig.from_hf(config)
  return _build(Qwen2_5_VL, cfg, table_for(cfg.vision.intermediate_size), files, dtype)


def _llava(config: dict, files, dtype):
  from ottvid_jax.models.llava_onevision.model import LlavaConfig, LlavaOnevision  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.llava_onevision.params import LLAVA  # pylint: disable=import-outside-toplevel

  cfg = LlavaConfig.from_hf(config)
  layers_in_file = (config.get("vision_config") or {}).get("num_hidden_layers", 27)
  unused = [str(i) for i in range(cfg.vision.feature_layers, max(layers_in_file, 27))]
  # Layers after the feature layer never run.
  ignore = (rf"vision_tower\.encoder\.layers\.({'|'.join(unused)})\..*",) if unused else ()
  return _build(LlavaOnevision, cfg, LLAVA, files, dtype, ignore)


_ARCHITECTURES = {
    "LlavaOnevisionForConditionalGeneration": _llava,
    "llava_onevision": _llava,
    "LlavaQwenForCausalLM": _llava,  # the original lmms-lab checkpoints
    "Qwen2_5_VLForConditionalGeneration": _qwen2_5_vl,
    "qwen2_5_vl": _qwen2_5_vl,
}


def load(checkpoint_dir: str, dtype=jnp.bfloat16) -> nnx.Module:
  """Loads a Hugging Face checkpoint folder into the matching NNX model.

  Reads ``config.json`` and the (possibly sharded) safetensors weights in any
  of the naming layouts in circulation, checks every tensor's shape, and fails
  with one :class:`CheckpointError` that lists every missing, unexpected or
  misshapen tensor.

  Args:
    checkpoint_dir: the folder (``config.json`` + ``*.safetensors``).
    dtype: parameter and compute dtype (``jnp.bfloat16`` or ``jnp.float32``).
  """
  config = read_config(checkpoint_dir)
  names = list(config.get("architectures") or []) + [config.get("model_type")]
  builder = next((_ARCHITECTURES[n] for n in names if n in _ARCHITECTURES), None)
  if builder is None:
    raise CheckpointError(f"unsupported architecture {names} in {checkpoint_dir!r}; supported: "
                          f"{sorted(_ARCHITECTURES)}")
  return builder(config, checkpoint_files(checkpoint_dir), dtype)
