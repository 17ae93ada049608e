"""Random weights for a model built abstractly, without a large temporary.

Benchmarks and shape studies need the 7B backbones with random weights. Eager
NNX initialisation draws each parameter in one piece, and the random bits plus
intermediates of the largest one (the 152k x 3584 LM head) briefly need two or
three times its 1 GiB on top of the weights already made: the allocator's peak
then measures initialisation, not inference. Here each parameter is drawn in
row blocks of at most ``block`` elements inside one ``lax.map``, so the
temporary stays a block.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["random_model"]

_ONES = ("scale", "weight")  # LayerNorm's scale, RMSNorm's weight
_ZEROS = ("bias",)


def _rows_per_block(shape: tuple[int, ...], block: int) -> int:
  """The largest divisor of ``shape[0]`` whose rows hold at most ``block`` elements (at least 1)."""
  most = max(1, min(shape[0], block // math.prod(shape[1:])))
  return next(d for d in range(most, 0, -1) if shape[0] % d == 0)


def _normal(key: jax.Array, shape: tuple[int, ...], dtype, std: float, block: int) -> jax.Array:
  """``std * N(0, 1)`` of ``shape`` drawn block by block (unjitted: the caller jits)."""
  if len(shape) < 2 or math.prod(shape) <= block:
    return (std * jax.random.normal(key, shape, jnp.float32)).astype(dtype)
  rows = _rows_per_block(shape, block)
  keys = jax.random.split(key, shape[0] // rows)
  draw = lambda k: (std * jax.random.normal(k, (rows,) + shape[1:], jnp.float32)).astype(dtype)  # noqa: E731
  return jax.lax.map(draw, keys).reshape(shape)  # [blocks, rows, ...] -> shape: a bitcast


def random_model(build: Callable[[], nnx.Module], seed: int = 0, std: float = 0.02,
                 block: int = 1 << 25) -> nnx.Module:
  """``build()``'s model with random weights, made without materialising ``build``'s own initialisers.

  Floating-point parameters named ``scale`` or ``weight`` (the norms) are ones,
  ``bias`` zeros, every other one ``std`` times a standard normal; each is drawn
  by one jitted call whose temporary is at most ``block`` elements.

  Args:
    build: makes the model (called under ``nnx.eval_shape``: no memory used).
    seed: the random seed.
    std: the normal's standard deviation.
    block: elements drawn at a time.
  """
  graphdef, abstract = nnx.split(nnx.eval_shape(build))
  values = nnx.to_pure_dict(abstract)
  key = jax.random.key(seed)
  normal = jax.jit(_normal, static_argnums=(1, 2, 3, 4))

  def fill(path, leaf):
    nonlocal key
    name = str(path[-1].key) if path else ""
    shape, dtype = tuple(leaf.shape), leaf.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
      return jnp.zeros(shape, dtype)
    if name in _ONES and len(shape) == 1:
      return jnp.ones(shape, dtype)
    if name in _ZEROS:
      return jnp.zeros(shape, dtype)
    key, sub = jax.random.split(key)
    return normal(sub, shape, np.dtype(dtype), float(std), int(block))

  values = jax.tree_util.tree_map_with_path(fill, values)
  nnx.replace_by_pure_dict(abstract, values)
  return nnx.merge(graphdef, abstract)
