"""Stage 2a: the locality-adaptive transport cost between adjacent frames.

The cost of moving kept token ``a_i`` of frame t onto kept token ``b_j`` of
frame t+1 blends how different they look with how far apart they sit:

    C_ij = alpha_t * (1 - max(0, cos(a_i, b_j)))
           + (1 - alpha_t) * lambda_loc * |p_i - p_j|_2 / sqrt(2),

with ``alpha_t`` in [0.5, 1] rising with the motion between the two frames:
static pairs weigh appearance and position equally, fast motion relies on
appearance alone. Functions work on one pair; the pipeline vmaps over pairs.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor import selection

__all__ = ["grid_positions", "pair_alpha", "pair_cost"]


def grid_positions(height: int, width: int) -> np.ndarray:
  """Normalised (row, col) of every token of an ``H x W`` grid, raster order.

  Args:
    height: H >= 1 (static).
    width: W >= 1 (static).

  Returns:
    A float32 NumPy array of shape ``[H * W, 2]`` with
    ``p = (row / (H - 1), col / (W - 1))``, a coordinate being 0 when its side
    is 1.
  """
  rows = np.arange(height, dtype=np.float64) / max(height - 1, 1)
  cols = np.arange(width, dtype=np.float64) / max(width - 1, 1)
  grid = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1)
  return grid.reshape(height * width, 2).astype(np.float32)


def pair_alpha(frame: jnp.ndarray, next_frame: jnp.ndarray, *, normalized: bool = False) -> jnp.ndarray:
  """The appearance weight ``alpha`` of one adjacent pair.

  ``alpha = 0.5 + 0.5 * clip(1 - mean_n cos(x_{t,n}, x_{t+1,n}), 0, 1)`` over
  the full, pre-selection grid.

  Args:
    frame: features of frame t, shape ``[N, D]``.
    next_frame: features of frame t+1, shape ``[N, D]``.
    normalized: the rows are already unit float32 vectors.

  Returns:
    A float32 scalar in [0.5, 1].
  """
  if not normalized:
    frame, next_frame = selection.l2_normalize(frame), selection.l2_normalize(next_frame)
  same_position = jnp.sum(frame * next_frame, axis=-1)
  return 0.5 + 0.5 * jnp.clip(1.0 - jnp.mean(same_position), 0.0, 1.0)


def pair_cost(
    tokens: jnp.ndarray,
    next_tokens: jnp.ndarray,
    positions: jnp.ndarray,
    next_positions: jnp.ndarray,
    alpha: jnp.ndarray,
    locality_scale: jnp.ndarray = 1.0,
    *,
    normalized: bool = False,
) -> jnp.ndarray:
  """Cost matrix between the kept tokens of frames t and t+1.

  Args:
    tokens: kept features of frame t, ``[K, D]``.
    next_tokens: kept features of frame t+1, ``[K', D]``.
    positions: their normalised grid positions, ``[K, 2]``.
    next_positions: ``[K', 2]``.
    alpha: the pair's appearance weight (:func:`pair_alpha`), scalar.
    locality_scale: lambda_loc, scales the positional term (1 in the paper).
    normalized: the feature rows are already unit float32 vectors.

  Returns:
    ``C`` of shape ``[K, K']``, float32; in [0, 1] when ``lambda_loc = 1``.
  """
  similarity = selection.cosine_similarity(tokens, next_tokens, normalized=normalized)  # [K, K']
  appearance = 1.0 - jnp.maximum(similarity, 0.0)
  offset = positions[:, None, :] - next_positions[None, :, :]  # [K, K', 2]
  squared = jnp.sum(offset * offset, axis=-1)  # [K, K']
  # sqrt has an infinite slope at 0 (same position): the double `where` keeps the
  # value exact and the gradient (of soft positions) finite.
  distance = jnp.where(squared > 0, jnp.sqrt(jnp.where(squared > 0, squared, 1.0)), 0.0) / math.sqrt(2.0)
  return alpha * appearance + (1.0 - alpha) * locality_scale * distance
