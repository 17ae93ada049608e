"""DivPrune (CVPR 2025): greedy max-min diversity over all tokens of the video."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ottvid_jax.compressor import CompressionOutput, l2_normalize, method_config, register
from ottvid_jax.peers.common import Peer, grouped_output, target_count

__all__ = ["DivPruneConfig", "divprune"]


def divprune(features, saliency, retention: float, *, grid_hw, key=None) -> CompressionOutput:
  """DivPrune: greedy max-min diversity over all tokens of the video, no attention.

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


@method_config
@dataclasses.dataclass(frozen=True)
class DivPruneConfig(Peer):
  """:func:`divprune`."""

  function = staticmethod(divprune)


register("divprune", DivPruneConfig)
