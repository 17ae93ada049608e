"""Stage 1b: the leave-one-out mass of the kept tokens (the OT marginals).

A kept token that is the only good representative of salient content would
cost a lot of coverage if it were removed; such tokens get *low* mass, so the
transport plan moves little into or out of them and they are rarely merged.
Functions work on one frame; the pipeline vmaps them over frames.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["leave_one_out", "mass_from_scores", "uniform_mass"]


def leave_one_out(similarity: jnp.ndarray, weights: jnp.ndarray, selected: jnp.ndarray) -> jnp.ndarray:
  """Coverage lost if each kept token alone were removed.

  For every token ``i`` of the frame let ``b(i)`` be its most similar kept
  token and ``g_i`` the gap between its best and second-best similarity to the
  kept set (with K = 1 the second best counts as 0, as in the authors' code;
  a single kept token has mass 1 either way). Kept token ``j`` collects

      LOO_j = sum_{i : b(i) = j} w_i * max(0, g_i).

  Args:
    similarity: float32 cosine similarities of shape ``[N, N]``.
    weights: every token's own normalised saliency, shape ``[N]``.
    selected: the kept indices, int of shape ``[K]``.

  Returns:
    ``LOO`` of shape ``[K]``, float32, non-negative.
  """
  keep = selected.shape[0]
  to_kept = jnp.take(similarity, selected, axis=1).astype(jnp.float32)  # [N, K]
  if keep >= 2:
    top, arg = jax.lax.top_k(to_kept, 2)  # [N, 2]
    gap = jnp.maximum(top[:, 0] - top[:, 1], 0.0)
  else:
    top, arg = jax.lax.top_k(to_kept, 1)
    gap = jnp.maximum(top[:, 0], 0.0)  # second best is taken as 0, as in the reference
  contribution = weights.astype(jnp.float32) * gap  # [N]
  return jax.ops.segment_sum(contribution, arg[:, 0], num_segments=keep)


def mass_from_scores(scores: jnp.ndarray, tau: jnp.ndarray) -> jnp.ndarray:
  """Mass ``softmax(-s_hat / tau)`` with ``s_hat = s / (max(s) + 1e-8)``.

  Args:
    scores: non-negative scores of shape ``[K]`` (leave-one-out losses).
    tau: the mass temperature tau_m > 0, a scalar (traced).

  Returns:
    Positive masses of shape ``[K]`` that sum to one.

  Note:
    A small ``tau`` concentrates the mass on the least important tokens; the
    masses stay strictly positive for any finite ``tau``, which keeps
    ``log(a)`` in Sinkhorn finite.
  """
  scaled = scores / (jnp.max(scores) + 1e-8)
  return jax.nn.softmax(-scaled / tau)


def uniform_mass(keep: int) -> jnp.ndarray:
  """The uniform-mass ablation: ``1 / K`` for each of ``keep`` tokens."""
  return jnp.full((keep,), 1.0 / keep, jnp.float32)
