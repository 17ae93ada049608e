"""Random and uniform baselines: M tokens drawn at random, or evenly spaced in every frame."""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor import CompressionOutput, method_config, register
from ottvid_jax.peers.common import Peer, frame_budgets, grouped_output, target_count

__all__ = ["RandomConfig", "UniformConfig", "random_keep", "uniform_keep"]


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


@method_config
@dataclasses.dataclass(frozen=True)
class RandomConfig(Peer):
  """:func:`random_keep`; without a ``key`` it draws with ``jax.random.key(seed)``.

  Attributes:
    seed: the draw's seed when no key is given. Static.
  """

  seed: int = 0

  def apply(self, features, saliency, grid_hw, key: Optional[jax.Array] = None, *, diagnostics: bool = False):
    del diagnostics
    key = jax.random.key(self.seed) if key is None else key
    return random_keep(features, saliency, self.retention, grid_hw=grid_hw, key=key)


@method_config
@dataclasses.dataclass(frozen=True)
class UniformConfig(Peer):
  """:func:`uniform_keep`."""

  function = staticmethod(uniform_keep)


register("random", RandomConfig)
register("uniform", UniformConfig)
