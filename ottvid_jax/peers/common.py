"""What every peer method shares: the budget and the grouped output.

A peer decides, for each of the ``T * N`` input tokens (flat index
``f = t * N + n``), the group it belongs to (a *root* token, or -1 when it is
dropped) and which roots survive. The output is then the same as OTT-Vid's: a
fixed number of slots, survivors first in raster order of their anchor (the
root), each the mean of its group, then padding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ottvid_jax.compressor.pipeline import CompressionOutput

__all__ = ["grouped_output", "target_count"]


def target_count(frames: int, tokens: int, retention: float) -> int:
  """M = round(T * N * r), at least 1 (the slot count of every peer)."""
  if not 0.0 < retention <= 1.0:
    raise ValueError(f"retention must lie in (0, 1], got {retention}")
  return max(1, int(round(frames * tokens * retention)))


def grouped_output(features: jnp.ndarray, root: jnp.ndarray, survivor: jnp.ndarray, slots: int) -> CompressionOutput:
  """Builds the common output from a grouping of the input tokens.

  Args:
    features: ``[T, N, D]`` input features.
    root: ``[T * N]`` int, the flat index of each token's group root, or -1
      for a dropped token. A root's own entry is its index.
    survivor: ``[T * N]`` bool, the roots that become output tokens (at most
      ``slots`` of them).
    slots: M, the static output length.

  Returns:
    A :class:`CompressionOutput` with ``diagnostics=None``: tokens are group
    means in the input dtype, ``index`` the root's flat index, ``span`` the
    first and last frame of each group.
  """
  frames, tokens, dim = features.shape
  count = frames * tokens
  flat = features.reshape(count, dim).astype(jnp.float32)
  member = root >= 0
  target = jnp.where(member, root, count)  # dropped tokens go to an extra, discarded segment
  sums = jax.ops.segment_sum(jnp.where(member[:, None], flat, 0.0), target, num_segments=count + 1)[:count]
  sizes = jax.ops.segment_sum(member.astype(jnp.float32), target, num_segments=count + 1)[:count]
  frame = jnp.arange(count, dtype=jnp.int32) // tokens
  last = jax.ops.segment_max(jnp.where(member, frame, -1), target, num_segments=count + 1)[:count]
  first = jax.ops.segment_min(jnp.where(member, frame, frames), target, num_segments=count + 1)[:count]
  (position,) = jnp.nonzero(survivor, size=slots, fill_value=0)
  valid = jnp.arange(slots) < jnp.sum(survivor)
  merged = sums[position] / jnp.maximum(sizes[position], 1.0)[:, None]
  return CompressionOutput(
      tokens=jnp.where(valid[:, None], merged, 0.0).astype(features.dtype),
      index=jnp.where(valid, position, -1).astype(jnp.int32),
      valid=valid,
      span=jnp.where(valid[:, None], jnp.stack([first[position], last[position]], axis=-1), -1).astype(jnp.int32),
      diagnostics=None,
  )
