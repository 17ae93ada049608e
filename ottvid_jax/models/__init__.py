"""Backbones in Flax NNX and ``load``, which reads a Hugging Face checkpoint folder."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from ottvid_jax.models import registry
from ottvid_jax.models.params import CheckpointError, checkpoint_files, read_config

__all__ = ["CheckpointError", "load", "registry"]


def load(checkpoint_dir: str, dtype=jnp.bfloat16) -> nnx.Module:
  """Loads a Hugging Face checkpoint folder into the matching NNX model (:mod:`ottvid_jax.models.registry`).

  Reads ``config.json`` and the (possibly sharded) safetensors weights in any
  of the naming layouts in circulation, checks every tensor's shape, and fails
  with one :class:`CheckpointError` that lists every missing, unexpected or
  misshapen tensor.

  Args:
    checkpoint_dir: the folder (``config.json`` + ``*.safetensors``).
    dtype: parameter and compute dtype (``jnp.bfloat16`` or ``jnp.float32``).
  """
  config = read_config(checkpoint_dir)
  backbone = registry.for_config(config, checkpoint_dir)  # before any weight is read
  return backbone.build(config, checkpoint_files(checkpoint_dir), dtype)
