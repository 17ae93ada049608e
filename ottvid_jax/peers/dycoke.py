"""DyCoke-style temporal merging (CVPR 2025): similarity to the previous frame, in windows, no OT."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ottvid_jax.compressor import CompressionOutput, l2_normalize, link_chains, method_config, rank_descending, register
from ottvid_jax.peers.common import Peer, grouped_output, positive_int, target_count

__all__ = ["DyCokeConfig", "dycoke", "same_position_chains"]


def same_position_chains(keep: jnp.ndarray, linked: jnp.ndarray, t: int, n: int) -> jnp.ndarray:
  """Roots of chains that link token (f, n) to (f-1, n) where ``linked``; -1 where the root is not kept."""
  parent = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (t - 1, n))
  chains = link_chains(parent, linked[1:], jnp.zeros_like(linked[1:]))
  return jnp.where(keep.reshape(-1)[chains.root], chains.root, -1)


def dycoke(features, saliency, retention: float, *, grid_hw, key=None, window: int = 4) -> CompressionOutput:
  """DyCoke-style temporal merging: similarity to the previous frame, in windows of ``window`` frames.

  A token's redundancy is its cosine similarity to the same-position token of
  the previous frame; the first frame of each window is never redundant. The
  M least redundant tokens are kept (first frames first, so DyCoke's natural
  floor is 1/window of the tokens; below it, first-frame tokens of least
  saliency go too); each dropped token is merged into the nearest kept token
  at its position earlier in its window. DyCoke's second stage (KV-cache
  pruning while decoding) is outside this interface.
  """
  del grid_hw, key
  t, n, _ = features.shape
  m = target_count(t, n, retention)
  unit = l2_normalize(features)
  redundancy = jnp.concatenate([jnp.full((1, n), -2.0), jnp.sum(unit[1:] * unit[:-1], axis=-1)], axis=0)  # [T, N]
  starts = (jnp.arange(t) % window == 0)[:, None]
  w = saliency.astype(jnp.float32)
  priority = jnp.where(starts, -3.0 - w / (jnp.max(w) + 1e-8), redundancy)  # lower: kept first
  keep = (rank_descending(-priority.reshape(-1)) < m).reshape(t, n)
  if t == 1:
    root = jnp.where(keep.reshape(-1), jnp.arange(n), -1)
  else:
    root = same_position_chains(keep, ~keep & ~starts, t, n)
  return grouped_output(features, root, keep.reshape(-1), m)


@method_config
@dataclasses.dataclass(frozen=True)
class DyCokeConfig(Peer):
  """:func:`dycoke`.

  Attributes:
    window: frames per merging window (DyCoke's 4). Static.
  """

  window: int = 4

  def __post_init__(self):
    super().__post_init__()
    positive_int(self.window, "window")

  function = staticmethod(dycoke)


register("dycoke", DyCokeConfig)
