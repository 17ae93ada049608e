"""Hugging Face checkpoints into NNX models: one key table per architecture.

A converter here is: prefix rules that normalise every layout in circulation
to one naming, a table of ``(regex, NNX path template, transform)``, an
abstract skeleton (``nnx.eval_shape``), streamed safetensors with a shape check
per tensor, and one error listing every missing, unexpected and misshapen
tensor. Source keys that a model does not use must be on an explicit ignore
list; every target leaf must be assigned.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from ottvid_jax.models import layers

__all__ = ["CheckpointError", "KeyTable", "Transform", "checkpoint_files", "decoder_rules", "fused_rules",
           "load_into", "read_config"]


class CheckpointError(ValueError):
  """A checkpoint folder that cannot be loaded; the message lists every problem."""


class Transform(enum.Enum):
  NONE = "none"
  LINEAR = "linear"  # torch Linear weight [out, in] -> kernel [in, out]
  PATCH = "patch"  # Conv with kernel = stride, [out, C, ...] -> matmul kernel [C * ..., out]
  CONV2D = "conv2d"  # torch Conv2d [out, in, kh, kw] -> nnx.Conv [kh, kw, in, out]


def _apply(transform: Transform, x: jax.Array) -> jax.Array:
  if transform is Transform.LINEAR:
    return x.T
  if transform is Transform.PATCH:
    return x.reshape(x.shape[0], -1).T
  if transform is Transform.CONV2D:
    return x.transpose(2, 3, 1, 0)
  return x


@dataclasses.dataclass(frozen=True)
class KeyTable:
  """How one architecture's tensor names map to NNX paths.

  Attributes:
    prefixes: ``(regex, replacement)`` applied in order to each key; the first
      that matches wins (normalises the in-memory, hub and original layouts).
    rules: ``(regex, path template, transform)`` on the normalised key; the
      template uses ``\\1``-style groups and dots, numbers become list indices.
      A template ending in ``#i/n`` names part i of n of a fused parameter:
      the parts are concatenated along the last axis once all have arrived
      (q, k, v into one projection; gate and up into one).
    ignore: regexes of normalised keys that exist in checkpoints but are not
      used (they are skipped, not reported).
    padded: ``(regex of dotted NNX paths, width)``: parameters that the model
      pads with zero units (``layers.MLP(pad=True)``). Where such a tensor
      (each part of a fused one) has ``width`` on an axis on which the model
      has ``layers.padded(width)``, it is zero-padded at the end; any other
      difference is still a misshapen tensor.
  """

  prefixes: Sequence[tuple[str, str]]
  rules: Sequence[tuple[str, str, Transform]]
  ignore: Sequence[str] = ()
  padded: Sequence[tuple[str, int]] = ()

  def padded_width(self, path: tuple) -> int | None:
    """The unpadded width of a padded parameter, or None."""
    name = ".".join(map(str, path))
    return next((width for pattern, width in self.padded if re.fullmatch(pattern, name)), None)

  def normalise(self, key: str) -> str:
    for pattern, replacement in self.prefixes:
      if re.match(pattern, key):
        return re.sub(pattern, replacement, key, count=1)
    return key

  def target(self, key: str):
    """``(path tuple, transform, (part, parts))`` of a normalised key, or None."""
    for pattern, template, transform in self.rules:
      m = re.fullmatch(pattern, key)
      if m:
        name, _, part = m.expand(template).partition("#")
        index, count = (int(v) for v in part.split("/")) if part else (0, 1)
        return tuple(int(p) if p.isdigit() else p for p in name.split(".")), transform, (index, count)
    return None


_PART = {"q_proj": "0/3", "k_proj": "1/3", "v_proj": "2/3", "gate_proj": "0/2", "up_proj": "1/2"}


def fused_rules(prefix: str, target: str, fused_name: str, names: tuple[str, ...], bias: bool) -> tuple:
  """Rules that put HF's separate projections (``q/k/v``, ``gate/up``) into one fused NNX projection."""
  rules = []
  for name in names:
    part = _PART[name]
    rules.append((rf"{prefix}\.{name}\.weight", rf"{target}.{fused_name}.kernel#{part}", Transform.LINEAR))
    if bias:
      rules.append((rf"{prefix}\.{name}\.bias", rf"{target}.{fused_name}.bias#{part}", Transform.NONE))
  return tuple(rules)


def decoder_rules() -> tuple:
  """The Qwen2 decoder's rules, on keys normalised to ``lm.`` and ``lm_head.``."""
  layer = r"lm\.layers\.(\d+)"
  target = r"language_model.layers.\1"
  return (
      (r"lm\.embed_tokens\.weight", "language_model.embed_tokens.embedding", Transform.NONE),
      (rf"{layer}\.(input_layernorm|post_attention_layernorm)\.weight", rf"{target}.\2.weight", Transform.NONE),
      *fused_rules(rf"{layer}\.self_attn", rf"{target}.self_attn", "qkv_proj", ("q_proj", "k_proj", "v_proj"),
                   bias=True),
      (rf"{layer}\.self_attn\.o_proj\.weight", rf"{target}.self_attn.o_proj.kernel", Transform.LINEAR),
      *fused_rules(rf"{layer}\.mlp", rf"{target}.mlp", "gate_up_proj", ("gate_proj", "up_proj"), bias=False),
      (rf"{layer}\.mlp\.down_proj\.weight", rf"{target}.mlp.down_proj.kernel", Transform.LINEAR),
      (r"lm\.norm\.weight", "language_model.norm.weight", Transform.NONE),
      (r"lm_head\.weight", "lm_head.kernel", Transform.LINEAR),
  )


def read_config(checkpoint_dir: str) -> dict:
  path = os.path.join(checkpoint_dir, "config.json")
  if not os.path.isdir(checkpoint_dir):
    raise CheckpointError(f"checkpoint folder {checkpoint_dir!r} does not exist")
  if not os.path.isfile(path):
    raise CheckpointError(f"{checkpoint_dir!r} has no config.json")
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as err:
    raise CheckpointError(f"{path} is not valid JSON: {err}") from err


def checkpoint_files(checkpoint_dir: str) -> list[str]:
  """The safetensors files of a checkpoint (one file, or the shards of an index)."""
  index = os.path.join(checkpoint_dir, "model.safetensors.index.json")
  if os.path.isfile(index):
    try:
      with open(index, encoding="utf-8") as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    except (json.JSONDecodeError, KeyError) as err:
      raise CheckpointError(f"{index} is not a valid safetensors index: {err}") from err
    missing = [s for s in shards if not os.path.isfile(os.path.join(checkpoint_dir, s))]
    if missing:
      raise CheckpointError(f"{checkpoint_dir!r} is missing shards listed in its index: {', '.join(missing)}")
    return [os.path.join(checkpoint_dir, s) for s in shards]
  files = sorted(f for f in os.listdir(checkpoint_dir) if f.endswith(".safetensors"))
  if not files:
    raise CheckpointError(f"{checkpoint_dir!r} has no .safetensors weights (model.safetensors or an index)")
  return [os.path.join(checkpoint_dir, f) for f in files]


def _zero_pad(tensor, shape: tuple[int, ...], width: int):
  """``tensor`` zero-padded at the end to ``shape`` where it has ``width`` and ``shape`` has
  ``layers.padded(width)``; unchanged if the shapes differ in any other way (reported as misshapen)."""
  if len(shape) != tensor.ndim or any(m != f and (f, m) != (width, layers.padded(width))
                                      for f, m in zip(tensor.shape, shape)):
    return tensor
  return jnp.pad(jnp.asarray(tensor), [(0, m - f) for f, m in zip(tensor.shape, shape)])


def _set(tree: dict, path: tuple, value) -> None:
  for p in path[:-1]:
    tree = tree[p]
  tree[path[-1]] = value


def _get(tree: dict, path: tuple):
  for p in path:
    tree = tree[p]
  return tree


def _leaf_paths(tree, prefix=()):
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _leaf_paths(v, prefix + (k,))
  else:
    yield prefix


def load_into(build: Callable[[], nnx.Module], files: Sequence[str], table: KeyTable, dtype) -> nnx.Module:
  """Builds a model abstractly and fills it from safetensors files.

  Args:
    build: makes the model (called under ``nnx.eval_shape``: no memory used).
    files: safetensors files.
    table: the architecture's :class:`KeyTable`.
    dtype: the dtype floating-point parameters are stored in.

  Raises:
    CheckpointError: listing every unexpected, misshapen and missing tensor,
      and unreadable files.
  """
  from safetensors import SafetensorError, safe_open  # pylint: disable=import-outside-toplevel

  graphdef, abstract = nnx.split(nnx.eval_shape(build))
  values = nnx.to_pure_dict(abstract)
  assigned: set[tuple] = set()
  pending: dict[tuple, dict[int, jax.Array]] = {}  # parts of fused parameters
  problems: list[str] = []

  def assign(path, tensor, key):
    expected = _get(values, path)
    width = table.padded_width(path)
    if width is not None:
      tensor = _zero_pad(tensor, tuple(expected.shape), width)
    if tuple(tensor.shape) != tuple(expected.shape):
      problems.append(f"misshapen tensor {key!r}: {tuple(tensor.shape)} in the file, {tuple(expected.shape)} expected")
    elif path in assigned:
      problems.append(f"tensor {key!r} maps to {'.'.join(map(str, path))}, which another tensor already set")
    else:
      target_dtype = dtype if jnp.issubdtype(expected.dtype, jnp.floating) else expected.dtype
      _set(values, path, jnp.asarray(tensor, target_dtype))
      assigned.add(path)

  for file in files:
    try:
      handle = safe_open(file, framework="flax")
    except (SafetensorError, OSError, ValueError) as err:
      problems.append(f"cannot read {os.path.basename(file)}: {err}")
      continue
    with handle:
      for key in handle.keys():
        name = table.normalise(key)
        if any(re.fullmatch(p, name) for p in table.ignore):
          continue
        found = table.target(name)
        if found is None:
          problems.append(f"unexpected tensor {key!r}")
          continue
        path, transform, (part, parts) = found
        try:
          _get(values, path)
        except (KeyError, IndexError, TypeError):
          problems.append(f"unexpected tensor {key!r} (no parameter {'.'.join(map(str, path))})")
          continue
        tensor = _apply(transform, handle.get_tensor(key))
        if parts == 1:
          assign(path, tensor, key)
          continue
        pieces = pending.setdefault(path, {})
        if part in pieces:
          problems.append(f"tensor {key!r} maps to part {part} of {'.'.join(map(str, path))} twice")
          continue
        width = table.padded_width(path)
        if width is not None:  # padded fused parameters have equal parts: pad each to its share
          shape = tuple(_get(values, path).shape)
          share = shape[:-1] + (shape[-1] // parts,)
          fitted = _zero_pad(tensor, share, width)
          if tuple(fitted.shape) != share:
            in_file = tuple(width if m == layers.padded(width) else m for m in share)
            problems.append(f"misshapen tensor {key!r}: {tuple(tensor.shape)} in the file, {in_file} expected")
            continue
          tensor = fitted
        pieces[part] = tensor
        if len(pieces) == parts:
          del pending[path]
          try:
            fused = jnp.concatenate([pieces[i] for i in range(parts)], axis=-1)
          except (TypeError, ValueError):
            problems.append(f"misshapen parts of {'.'.join(map(str, path))}: "
                            f"{[tuple(pieces[i].shape) for i in range(parts)]}")
            continue
          assign(path, fused, key)
  for path, pieces in pending.items():
    problems.append(f"missing part of {'.'.join(map(str, path))} (have parts {sorted(pieces)})")
  missing = [p for p in _leaf_paths(values) if p not in assigned and p not in pending]
  problems += [f"missing tensor for {'.'.join(map(str, p))}" for p in missing]
  if problems:
    raise CheckpointError(f"cannot load the checkpoint ({len(problems)} problems):\n  " + "\n  ".join(problems))
  nnx.replace_by_pure_dict(abstract, values)
  return nnx.merge(graphdef, abstract)
