"""FastVID-style (NeurIPS 2025): dynamic segmentation, salient tokens and density-peak context tokens."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ottvid_jax.compressor import CompressionOutput, l2_normalize, method_config, rank_descending, register
from ottvid_jax.peers.common import Peer, frame_budgets, grouped_output, positive_int, rank_within, target_count

__all__ = ["FastVIDConfig", "dpc_knn_scores", "fastvid", "segments"]


def segments(unit: jnp.ndarray, lowest: int, threshold: Any) -> jnp.ndarray:
  """DySeg: segment id of each frame; cuts after the ``lowest`` least similar pairs and all below ``threshold``."""
  t = unit.shape[0]
  if t == 1:
    return jnp.zeros((1,), jnp.int32)
  similarity = jnp.mean(jnp.sum(unit[1:] * unit[:-1], axis=-1), axis=-1)  # [P]
  cut = (rank_descending(-similarity) < min(lowest, t - 1)) | (similarity < threshold)
  return jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(cut).astype(jnp.int32)])


def dpc_knn_scores(unit: jnp.ndarray, candidate: jnp.ndarray, k: int) -> jnp.ndarray:
  """Density-peak scores rho * delta over candidates (DPC-kNN); -inf elsewhere."""
  dist = 1.0 - unit @ unit.T  # [N, N]
  dist = jnp.where(candidate[None, :] & candidate[:, None], dist, jnp.inf)
  knn = -jax.lax.top_k(-jnp.where(jnp.eye(dist.shape[0], dtype=bool), jnp.inf, dist), k)[0]  # [N, k]
  density = jnp.exp(-jnp.mean(jnp.where(jnp.isfinite(knn), knn, 4.0) ** 2, axis=-1))
  higher = density[None, :] > density[:, None]
  delta = jnp.min(jnp.where(higher & jnp.isfinite(dist), dist, jnp.inf), axis=-1)
  delta = jnp.where(jnp.isfinite(delta), delta, jnp.max(jnp.where(jnp.isfinite(dist), dist, 0.0)))
  return jnp.where(candidate, density * delta, -jnp.inf)


def fastvid(features, saliency, retention: float, *, grid_hw, key=None, salient_share: Any = 0.6, knn: int = 4,
            segment_cuts: int = 7, segment_threshold: Any = 0.9) -> CompressionOutput:
  """FastVID-style: dynamic segmentation, salient tokens and density-peak context tokens.

  DySeg cuts the video after its ``segment_cuts`` (7) least similar adjacent
  pairs and after every pair below ``segment_threshold`` (0.9) mean
  same-position similarity. Each frame keeps its share k of M:
  ``round(salient_share k)`` (0.6 k) tokens of highest saliency, and context
  tokens that are the density peaks (DPC-kNN, ``knn`` = 4) of its remaining
  tokens. Every other token is merged into the most similar context token of
  its *segment* (possibly in another frame). Deviation: FastVID anchors
  context merging on every 4th frame; here any frame of the segment can absorb.
  """
  del grid_hw, key
  t, n, d = features.shape
  m = target_count(t, n, retention)
  budgets = jnp.asarray(frame_budgets(t, m))
  salient_k = jnp.round(budgets * salient_share).astype(jnp.int32)
  unit = l2_normalize(features)
  is_salient = rank_within(saliency.astype(jnp.float32)) < salient_k[:, None]
  scores = jax.vmap(lambda u, c: dpc_knn_scores(u, c, min(knn, max(n - 1, 1))))(unit, ~is_salient)
  is_context = ~is_salient & (rank_within(scores) < (budgets - salient_k)[:, None])
  segment = segments(unit, segment_cuts, segment_threshold)  # [T]
  flat_unit = unit.reshape(t * n, d)
  centre = is_context.reshape(-1)
  same_segment = segment[:, None].repeat(n, 1).reshape(-1)
  sim = flat_unit @ flat_unit.T  # [T*N, T*N]
  allowed = centre[None, :] & (same_segment[:, None] == same_segment[None, :])
  nearest = jnp.argmax(jnp.where(allowed, sim, -jnp.inf), axis=-1)
  kept = (is_salient | is_context).reshape(-1)
  root = jnp.where(kept, jnp.arange(t * n), jnp.where(jnp.any(allowed, axis=-1), nearest, -1))
  return grouped_output(features, root, kept, m)


@method_config(traced=("salient_share", "segment_threshold"))
@dataclasses.dataclass(frozen=True)
class FastVIDConfig(Peer):
  """:func:`fastvid`.

  Attributes:
    salient_share: the share of a frame's tokens kept by saliency, in [0, 1]. Traced.
    knn: neighbours of the density estimate. Static.
    segment_cuts: DySeg's cuts at the least similar pairs. Static.
    segment_threshold: DySeg's similarity below which a pair is always cut. Traced.
  """

  salient_share: Any = 0.6
  knn: int = 4
  segment_cuts: int = 7
  segment_threshold: Any = 0.9
  CHECKS = {"salient_share": (lambda v: (v >= 0) & (v <= 1), "in [0, 1]"),
            "segment_threshold": (lambda v: (v >= -1) & (v <= 1), "a cosine in [-1, 1]")}

  def __post_init__(self):
    super().__post_init__()
    positive_int(self.knn, "knn")
    if not isinstance(self.segment_cuts, int) or isinstance(self.segment_cuts, bool) or self.segment_cuts < 0:
      raise ValueError(f"segment_cuts must be a non-negative int (static), got {self.segment_cuts!r}")

  function = staticmethod(fastvid)


register("fastvid", FastVIDConfig)
