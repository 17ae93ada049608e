"""What every peer method shares: its config base, the budget, the grouped output and small helpers.

A peer decides, for each of the ``T * N`` input tokens (flat index
``f = t * N + n``), the group it belongs to (a *root* token, or -1 when it is
dropped) and which roots survive. The output is then the same as OTT-Vid's: a
fixed number of slots, survivors first in raster order of their anchor (the
root), each the mean of its group, then padding (for the methods that pad).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor import CompressionOutput, concrete, rank_descending

__all__ = ["Peer", "evenly", "frame_budgets", "grouped_output", "positive_int", "rank_within", "target_count"]


def target_count(frames: int, tokens: int, retention: float) -> int:
  """M = round(T * N * r), at least 1 (the slot count of every peer)."""
  if not 0.0 < retention <= 1.0:
    raise ValueError(f"retention must lie in (0, 1], got {retention}")
  return max(1, int(round(frames * tokens * retention)))


@dataclasses.dataclass(frozen=True)
class Peer:
  """The fields and members every peer's config shares (subclasses add their options).

  Attributes:
    retention: r in (0, 1]; the output has ``M = round(T N r)`` slots. Static.
  """

  retention: float = 0.1
  function: ClassVar[Callable[..., CompressionOutput]]  # the method's pure function
  pads: ClassVar[bool] = False
  CHECKS: ClassVar[dict[str, tuple[Callable[[Any], Any], str]]] = {}  # traced field -> (test, what it must be)

  def __post_init__(self):
    if not isinstance(self.retention, (int, float)) or isinstance(self.retention, bool):
      raise ValueError(f"retention must be a Python float (static), got {self.retention!r}")
    target_count(1, 1, self.retention)
    for name, (ok, what) in self.CHECKS.items():
      value = concrete(getattr(self, name))
      if value is not None and not (np.issubdtype(value.dtype, np.number) and np.all(np.isfinite(value) & ok(value))):
        raise ValueError(f"{type(self).__name__}.{name} must be {what}, got {getattr(self, name)!r}")

  def replace(self, **changes: Any):
    """A copy with ``changes`` applied (and checked)."""
    return dataclasses.replace(self, **changes)

  def slots(self, frames: int, tokens: int) -> int:
    """M = round(T N r)."""
    return target_count(frames, tokens, self.retention)

  def apply(self, features, saliency, grid_hw, key=None, *, diagnostics: bool = False) -> CompressionOutput:
    """``function(features, saliency, retention, grid_hw=..., key=..., **options)``: every field but
    ``retention`` is an option of the method's function (peers report no diagnostics)."""
    del diagnostics
    options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "retention"}
    return type(self).function(features, saliency, self.retention, grid_hw=grid_hw, key=key, **options)


def positive_int(value: Any, name: str) -> None:
  """Raises unless ``value`` is a positive Python int (a static option)."""
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
    raise ValueError(f"{name} must be a positive int (static), got {value!r}")


def frame_budgets(frames: int, total: int) -> np.ndarray:
  """``total`` slots spread over frames as evenly as possible (earlier frames get the remainder)."""
  base, extra = divmod(total, frames)
  return np.asarray([base + (t < extra) for t in range(frames)], np.int32)


def rank_within(values: jnp.ndarray) -> jnp.ndarray:
  """Per row, the rank of each entry in descending order (ties: lower index first)."""
  return jax.vmap(rank_descending)(values)


def evenly(count: jnp.ndarray, picks: jnp.ndarray, position: jnp.ndarray) -> jnp.ndarray:
  """Whether item ``position`` (of ``count``) is one of ``picks`` evenly spaced items (Bresenham)."""
  count = jnp.maximum(count, 1)
  return (position + 1) * picks // count > position * picks // count


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
