"""The backbone contract: one :class:`Backbone` entry per architecture, and the lookups every caller uses.

``models.load``, ``ottvid answer``, ``ottvid demo``, ``ottvid eval`` and the
benchmarks ask this registry which backbone a ``config.json`` or a loaded model
is, and reach the backbone's loader, processor, ``generate`` and the vision
features the demo shows through its entry; none of them dispatches on model
classes. A new backbone is one folder under ``models/`` plus one
:func:`register` call.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Sequence

from ottvid_jax.models.params import CheckpointError, read_config

__all__ = ["Backbone", "BACKBONES", "for_checkpoint", "for_config", "names", "of", "register"]


@dataclasses.dataclass(frozen=True)
class Backbone:
  """One architecture's entry points.

  Attributes:
    name: the lmms-eval model name (``qwen2_5_vl``, ``llava_onevision``, ``llava_vid``); the eval
      protocols key their per-backbone settings by it.
    architectures: the ``config.json`` ``architectures`` / ``model_type`` values it reads.
    parse: ``config.json`` (a dict) -> the model's config.
    matches: whether a parsed config is this backbone (tells apart backbones that share
      architectures: LLaVA-Video's checkpoints are LLaVA-OneVision's with newlines after each grid).
    model: the model class.
    build: ``(config.json, weight files, dtype)`` -> the loaded model.
    processor: ``(checkpoint folder, model config)`` -> the backbone's processor (tokenizer, pixels).
    generate: ``(model, batch, sampling, compression, progress=None)`` -> ``GenerationResult``.
    demo_tokens: ``(model, batch)`` -> ``(tokens [T, N, D], saliency [T, N], (H, W) token grid,
      (height, width) of a picture of one token grid, video frames per token grid)``, what
      ``ottvid demo --checkpoint`` compresses and draws.
  """

  name: str
  architectures: tuple[str, ...]
  parse: Callable[[dict], Any]
  matches: Callable[[Any], bool]
  model: Callable[[], type]
  build: Callable[[dict, Sequence[str], Any], Any]
  processor: Callable[[str, Any], Any]
  generate: Callable[..., Any]
  demo_tokens: Callable[[Any, Any], tuple]


BACKBONES: dict[str, Backbone] = {}


def register(backbone: Backbone) -> Backbone:
  """Adds ``backbone`` (a later entry with the same architectures is asked after the earlier ones).

  Raises:
    ValueError: the name is taken.
  """
  if backbone.name in BACKBONES:
    raise ValueError(f"a backbone is already registered as {backbone.name!r}")
  BACKBONES[backbone.name] = backbone
  return backbone


def _load() -> None:
  from ottvid_jax.models import backbones  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import


def names() -> tuple[str, ...]:
  """The registered backbones' names, in the order they are asked."""
  _load()
  return tuple(BACKBONES)


def for_config(config: dict, where: str = "config.json") -> Backbone:
  """The backbone of a parsed ``config.json``.

  Raises:
    CheckpointError: no registered backbone reads it (the message lists the architectures that are read).
  """
  _load()
  names = set(config.get("architectures") or []) | {config.get("model_type")}
  for backbone in BACKBONES.values():
    if names & set(backbone.architectures) and backbone.matches(backbone.parse(config)):
      return backbone
  known = sorted({a for b in BACKBONES.values() for a in b.architectures})
  raise CheckpointError(f"unsupported architecture {sorted(n for n in names if n)} in {where!r}; supported: {known}")


def for_checkpoint(checkpoint_dir: str) -> Backbone:
  """The backbone of a checkpoint folder, from its ``config.json`` alone (no weights read)."""
  return for_config(read_config(checkpoint_dir), os.path.join(checkpoint_dir, "config.json"))


def of(model) -> Backbone:
  """The backbone of a loaded model.

  Raises:
    ValueError: the model is of no registered backbone.
  """
  _load()
  for backbone in BACKBONES.values():
    if isinstance(model, backbone.model()) and backbone.matches(model.config):
      return backbone
  raise ValueError(f"{type(model).__name__} is not a registered backbone ({sorted(BACKBONES)})")
