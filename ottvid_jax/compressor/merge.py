"""Stage 4b: chains of merges, strong pruning, merged features, output slots.

Accepted matches are edges from a frame-(t+1) token to a frame-t token, so the
kept tokens form a forest whose roots are the earliest token of each chain.
Roots are found by pointer doubling in ceil(log2(T - 1)) rounds. An accepted
match whose cost is above theta is not merged: its frame-(t+1) token is
dropped instead, with every later token merged into it (strong pruning). Each
surviving root becomes one output token, the mean of its chain's original
features.

Tokens are indexed flat over the kept tokens, ``f = t * K + k``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Chains", "compact", "link_chains", "merge_features"]


class Chains(NamedTuple):
  """The forest of merges over the ``T * K`` kept tokens.

  Attributes:
    root: ``[T * K]`` int32, the flat index of each token's chain root.
    dropped: ``[T * K]`` bool, removed by strong pruning (the pruned token and
      every token merged into it).
    survivor: ``[T * K]`` bool, roots that are not dropped: the output tokens.
  """

  root: jnp.ndarray
  dropped: jnp.ndarray
  survivor: jnp.ndarray


def _doubling_rounds(frames: int) -> int:
  """Rounds of pointer doubling that resolve chains of up to T - 1 edges."""
  return math.ceil(math.log2(frames - 1)) if frames > 2 else 0


def link_chains(parent: jnp.ndarray, merged: jnp.ndarray, pruned: jnp.ndarray) -> Chains:
  """Resolves the merges of all pairs into chains.

  Args:
    parent: ``[P, K]`` int, for frame-(t+1) token ``k`` its frame-t parent.
    merged: ``[P, K]`` bool, the accepted matches that are merged.
    pruned: ``[P, K]`` bool, the accepted matches that are strong-pruned
      (disjoint from ``merged``).

  Returns:
    The :class:`Chains` over ``T * K = (P + 1) * K`` tokens.
  """
  pairs, keep = parent.shape
  frames = pairs + 1
  own = jnp.arange(frames * keep, dtype=jnp.int32).reshape(frames, keep)  # [T, K]
  up = jnp.arange(pairs, dtype=jnp.int32)[:, None] * keep + parent.astype(jnp.int32)  # [P, K]
  pointer = own.at[1:].set(jnp.where(merged, up, own[1:])).reshape(-1)  # [T*K]
  for _ in range(_doubling_rounds(frames)):
    pointer = pointer[pointer]
  pruned_flat = jnp.concatenate([jnp.zeros((keep,), bool), pruned.reshape(-1)])  # [T*K]
  dropped = pruned_flat[pointer]
  is_root = pointer == jnp.arange(frames * keep, dtype=jnp.int32)
  return Chains(pointer, dropped, is_root & ~dropped)


def merge_features(features: jnp.ndarray, root: jnp.ndarray, weights: jnp.ndarray | None = None) -> jnp.ndarray:
  """Weighted mean of the original features of every chain, at its root.

  Args:
    features: ``[T * K, D]`` kept features (any float dtype).
    root: ``[T * K]`` chain roots (:class:`Chains`).
    weights: optional positive ``[T * K]`` weights; ``None`` is the plain
      mean of the authors' code.

  Returns:
    Float32 ``[T * K, D]``; row ``f`` holds the merged feature of the chain
    rooted at ``f`` (rows of non-roots are meaningless).
  """
  count = features.shape[0]
  features = features.astype(jnp.float32)
  if weights is None:
    weights = jnp.ones((count,), jnp.float32)
  weights = weights.astype(jnp.float32)
  total = jax.ops.segment_sum(features * weights[:, None], root, num_segments=count)  # [T*K, D]
  norm = jax.ops.segment_sum(weights, root, num_segments=count)  # [T*K]
  return total / jnp.where(norm > 0, norm, 1.0)[:, None]


def compact(survivor: jnp.ndarray, slots: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Static-size list of the survivors, in flat (raster) order.

  Args:
    survivor: ``[T * K]`` bool.
    slots: the output length M (static); must be at least the survivor count.

  Returns:
    ``(position, valid)``: ``[M]`` int32 flat positions of the survivors
    first, then 0 for padding, and the ``[M]`` bool validity mask.
  """
  (position,) = jnp.nonzero(survivor, size=slots, fill_value=0)
  valid = jnp.arange(slots) < jnp.sum(survivor)
  return position.astype(jnp.int32), valid
