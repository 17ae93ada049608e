"""Peer methods of the paper's comparison, in OTT-Vid's interface.

Every method takes ``features [T, N, D]``, ``saliency [T, N]`` and a retention r
(static) with ``grid_hw`` (static), and returns the same
:class:`CompressionOutput` as :func:`ottvid_jax.compress`: ``M = round(T N r)``
slots, survivors in raster order of their anchor, group means, validity. All
are pure, jit-compatible functions with static shapes; methods whose count can
fall below M (tree merging) pad. They are faithful re-statements of each
paper's *mechanism*, not ports of its code; the deviations are named in each
docstring. Similarities are float32 cosines (:func:`cosine_similarity`).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor import merge as merge_lib
from ottvid_jax.compressor.allocation import rank_descending
from ottvid_jax.compressor.pipeline import CompressionOutput
from ottvid_jax.compressor.selection import cosine_similarity, l2_normalize
from ottvid_jax.peers.common import grouped_output, target_count

__all__ = ["divprune", "dycoke", "fastvid", "flashvid", "frame_budgets", "random_keep", "uniform_keep",
           "visionzip"]


def frame_budgets(frames: int, total: int) -> np.ndarray:
  """``total`` slots spread over frames as evenly as possible (earlier frames get the remainder)."""
  base, extra = divmod(total, frames)
  return np.asarray([base + (t < extra) for t in range(frames)], np.int32)


def _rank_within(values: jnp.ndarray) -> jnp.ndarray:
  """Per row, the rank of each entry in descending order (ties: lower index first)."""
  return jax.vmap(rank_descending)(values)


def _evenly(count: jnp.ndarray, picks: jnp.ndarray, position: jnp.ndarray) -> jnp.ndarray:
  """Whether item ``position`` (of ``count``) is one of ``picks`` evenly spaced items (Bresenham)."""
  count = jnp.maximum(count, 1)
  return (position + 1) * picks // count > position * picks // count


def random_keep(features, saliency, retention: float, *, grid_hw, key: jax.Array) -> CompressionOutput:
  """Random: M tokens drawn uniformly without replacement (needs a PRNG ``key``)."""
  del saliency, grid_hw
  t, n, _ = features.shape
  m = target_count(t, n, retention)
  keep = jnp.zeros((t * n,), bool).at[jax.random.choice(key, t * n, (m,), replace=False)].set(True)
  return grouped_output(features, jnp.where(keep, jnp.arange(t * n), -1), keep, m)


def uniform_keep(features, saliency, retention: float, *, grid_hw, key=None) -> CompressionOutput:
  """Uniform spatial stride: each frame keeps its share of M tokens evenly spaced in raster order."""
  del saliency, grid_hw, key
  t, n, _ = features.shape
  m = target_count(t, n, retention)
  budgets = frame_budgets(t, m)
  keep = np.zeros((t, n), bool)
  for f, k in enumerate(budgets):
    keep[f, np.minimum(((np.arange(k) + 0.5) * n / max(k, 1)).astype(int), n - 1)] = True
  keep = jnp.asarray(keep.reshape(-1))
  return grouped_output(features, jnp.where(keep, jnp.arange(t * n), -1), keep, m)


def divprune(features, saliency, retention: float, *, grid_hw, key=None) -> CompressionOutput:
  """DivPrune (CVPR 2025): greedy max-min diversity over all tokens of the video, no attention.

  Starts from the token farthest (cosine distance) from the video's mean token,
  then repeatedly adds the token whose distance to its nearest selected token
  is largest. Unselected tokens are pruned. Same at every retention.
  """
  del saliency, grid_hw, key
  t, n, d = features.shape
  m = target_count(t, n, retention)
  unit = l2_normalize(features).reshape(t * n, d)
  first = jnp.argmax(1.0 - unit @ l2_normalize(jnp.mean(unit, axis=0)))

  def step(i, state):
    nearest, chosen = state
    pick = jnp.argmax(jnp.where(chosen, -jnp.inf, nearest))
    distance = 1.0 - jnp.einsum("nd,d->n", unit, unit[pick], precision=jax.lax.Precision.HIGHEST)
    return jnp.minimum(nearest, distance), chosen.at[pick].set(True)

  start_distance = 1.0 - jnp.einsum("nd,d->n", unit, unit[first], precision=jax.lax.Precision.HIGHEST)
  _, chosen = jax.lax.fori_loop(1, m, step, (start_distance, jnp.zeros((t * n,), bool).at[first].set(True)))
  return grouped_output(features, jnp.where(chosen, jnp.arange(t * n), -1), chosen, m)


def visionzip(features, saliency, retention: float, *, grid_hw, key=None, dominant_share: float = 54 / 64
              ) -> CompressionOutput:
  """VisionZip (CVPR 2025), per frame: dominant tokens by saliency, contextual tokens by merging.

  Each frame keeps its share k of M: ``round(dominant_share * k)`` dominant
  tokens with the highest saliency (VisionZip's 54 of 64 on LLaVA, at every
  retention), plus contextual tokens: targets evenly spaced among the
  remaining tokens, every other remaining token merged (averaged) into its
  most similar target.
  """
  del grid_hw, key
  t, n, _ = features.shape
  m = target_count(t, n, retention)
  budgets = jnp.asarray(frame_budgets(t, m))
  dominant = jnp.round(budgets * dominant_share).astype(jnp.int32)
  contextual = budgets - dominant
  is_dominant = _rank_within(saliency.astype(jnp.float32)) < dominant[:, None]  # [T, N]
  rest = ~is_dominant
  position = jnp.cumsum(rest, axis=1) - 1
  is_target = rest & _evenly((n - dominant)[:, None], contextual[:, None], position)
  sim = jax.vmap(cosine_similarity)(features)  # [T, N, N]
  nearest = jnp.argmax(jnp.where(is_target[:, None, :], sim, -jnp.inf), axis=-1)  # [T, N]
  local = jnp.where(is_dominant | is_target, jnp.arange(n), jnp.where(jnp.any(is_target, 1, keepdims=True), nearest, -1))
  root = jnp.where(local >= 0, local + n * jnp.arange(t)[:, None], -1).reshape(-1)
  return grouped_output(features, root, (is_dominant | is_target).reshape(-1), m)


def _same_position_chains(keep: jnp.ndarray, linked: jnp.ndarray, t: int, n: int) -> jnp.ndarray:
  """Roots of chains that link token (f, n) to (f-1, n) where ``linked``; -1 where the root is not kept."""
  parent = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (t - 1, n))
  chains = merge_lib.link_chains(parent, linked[1:], jnp.zeros_like(linked[1:]))
  return jnp.where(keep.reshape(-1)[chains.root], chains.root, -1)


def dycoke(features, saliency, retention: float, *, grid_hw, key=None, window: int = 4) -> CompressionOutput:
  """DyCoke-style temporal merging (CVPR 2025): similarity to the previous frame, in windows of 4, no OT.

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
    root = _same_position_chains(keep, ~keep & ~starts, t, n)
  return grouped_output(features, root, keep.reshape(-1), m)


def _segments(unit: jnp.ndarray, lowest: int, threshold: float) -> jnp.ndarray:
  """DySeg: segment id of each frame; cuts after the ``lowest`` least similar pairs and all below ``threshold``."""
  t = unit.shape[0]
  if t == 1:
    return jnp.zeros((1,), jnp.int32)
  similarity = jnp.mean(jnp.sum(unit[1:] * unit[:-1], axis=-1), axis=-1)  # [P]
  cut = (rank_descending(-similarity) < min(lowest, t - 1)) | (similarity < threshold)
  return jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(cut).astype(jnp.int32)])


def _dpc_knn_scores(unit: jnp.ndarray, candidate: jnp.ndarray, k: int) -> jnp.ndarray:
  """Density-peak scores rho * delta over candidates (DPC-kNN); -inf elsewhere."""
  dist = 1.0 - unit @ unit.T  # [N, N]
  dist = jnp.where(candidate[None, :] & candidate[:, None], dist, jnp.inf)
  knn = -jax.lax.top_k(-jnp.where(jnp.eye(dist.shape[0], dtype=bool), jnp.inf, dist), k)[0]  # [N, k]
  density = jnp.exp(-jnp.mean(jnp.where(jnp.isfinite(knn), knn, 4.0) ** 2, axis=-1))
  higher = density[None, :] > density[:, None]
  delta = jnp.min(jnp.where(higher & jnp.isfinite(dist), dist, jnp.inf), axis=-1)
  delta = jnp.where(jnp.isfinite(delta), delta, jnp.max(jnp.where(jnp.isfinite(dist), dist, 0.0)))
  return jnp.where(candidate, density * delta, -jnp.inf)


def fastvid(features, saliency, retention: float, *, grid_hw, key=None, salient_share: float = 0.6,
            knn: int = 4) -> CompressionOutput:
  """FastVID-style (NeurIPS 2025): dynamic segmentation, salient tokens and density-peak context tokens.

  DySeg cuts the video after its 7 least similar adjacent pairs and after every
  pair below 0.9 mean same-position similarity. Each frame keeps its share k
  of M: ``round(0.6 k)`` tokens of highest saliency, and context tokens that are
  the density peaks (DPC-kNN, k = 4) of its remaining tokens. Every other token
  is merged into the most similar context token of its *segment* (possibly in
  another frame). Deviation: FastVID anchors context merging on every 4th
  frame; here any frame of the segment can absorb.
  """
  del grid_hw, key
  t, n, d = features.shape
  m = target_count(t, n, retention)
  budgets = jnp.asarray(frame_budgets(t, m))
  salient_k = jnp.round(budgets * salient_share).astype(jnp.int32)
  unit = l2_normalize(features)
  is_salient = _rank_within(saliency.astype(jnp.float32)) < salient_k[:, None]
  scores = jax.vmap(lambda u, c: _dpc_knn_scores(u, c, min(knn, max(n - 1, 1))))(unit, ~is_salient)
  is_context = ~is_salient & (_rank_within(scores) < (budgets - salient_k)[:, None])
  segment = _segments(unit, 7, 0.9)  # [T]
  flat_unit = unit.reshape(t * n, d)
  centre = is_context.reshape(-1)
  same_segment = segment[:, None].repeat(n, 1).reshape(-1)
  sim = flat_unit @ flat_unit.T  # [T*N, T*N]
  allowed = centre[None, :] & (same_segment[:, None] == same_segment[None, :])
  nearest = jnp.argmax(jnp.where(allowed, sim, -jnp.inf), axis=-1)
  kept = (is_salient | is_context).reshape(-1)
  root = jnp.where(kept, jnp.arange(t * n), jnp.where(jnp.any(allowed, axis=-1), nearest, -1))
  return grouped_output(features, root, kept, m)


def flashvid(features, saliency, retention: float, *, grid_hw, key=None, threshold: float = 0.8
             ) -> CompressionOutput:
  """FlashVID-style (ICLR 2026): calibrated max-min diversity per frame, then tree merging over time.

  ADTS: each frame picks its share k of M greedily, starting from its most
  salient token and then maximising ``min distance to the picked tokens x
  (0.5 + 0.5 w / max w)`` (saliency-calibrated diversity). TSTM: each picked
  token links to its most similar picked token of the previous frame when the
  cosine is at least 0.8, and each tree is mean-pooled, so fewer than M slots
  may be valid. Deviation: FlashVID's inner-LLM pruning stage is not part of
  this interface.
  """
  del grid_hw, key
  t, n, _ = features.shape
  m = target_count(t, n, retention)
  budgets = jnp.asarray(frame_budgets(t, m))
  k_max = int(frame_budgets(t, m).max())
  unit = l2_normalize(features)
  w = saliency.astype(jnp.float32)
  calibration = 0.5 + 0.5 * w / (jnp.max(w, axis=1, keepdims=True) + 1e-8)  # [T, N]

  def pick(u, cal, budget):
    sim = u @ u.T
    first = jnp.argmax(cal)
    chosen = jnp.zeros((n,), bool).at[first].set(True)

    def step(i, state):
      nearest, chosen = state
      score = jnp.where(chosen, -jnp.inf, nearest * cal)
      j = jnp.argmax(score)
      add = i < budget
      return jnp.where(add, jnp.minimum(nearest, 1.0 - sim[:, j]), nearest), chosen.at[j].set(chosen[j] | add)

    return jax.lax.fori_loop(1, k_max, step, (1.0 - sim[:, first], chosen))[1] & (budget > 0)

  chosen = jax.vmap(pick)(unit, calibration, budgets)  # [T, N]
  if t == 1:
    return grouped_output(features, jnp.where(chosen.reshape(-1), jnp.arange(n), -1), chosen.reshape(-1), m)
  sim = jnp.einsum("tnd,tmd->tnm", unit[1:], unit[:-1], precision=jax.lax.Precision.HIGHEST)  # [P, N, N]
  sim = jnp.where(chosen[:-1][:, None, :], sim, -jnp.inf)
  parent = jnp.argmax(sim, axis=-1).astype(jnp.int32)  # [P, N]
  linked = chosen[1:] & (jnp.max(sim, axis=-1) >= threshold)
  chains = merge_lib.link_chains(parent, linked, jnp.zeros_like(linked))
  flat_chosen = chosen.reshape(-1)
  root = jnp.where(flat_chosen, chains.root, -1)
  return grouped_output(features, root, flat_chosen & chains.survivor, m)
