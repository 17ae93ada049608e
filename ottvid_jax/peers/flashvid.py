"""FlashVID-style (ICLR 2026): calibrated max-min diversity per frame, then tree merging over time."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ottvid_jax.compressor import CompressionOutput, l2_normalize, link_chains, method_config, register
from ottvid_jax.peers.common import Peer, frame_budgets, grouped_output, target_count

__all__ = ["FlashVIDConfig", "flashvid"]


def flashvid(features, saliency, retention: float, *, grid_hw, key=None, threshold: Any = 0.8) -> CompressionOutput:
  """FlashVID-style: calibrated max-min diversity per frame, then tree merging over time.

  ADTS: each frame picks its share k of M greedily, starting from its most
  salient token and then maximising ``min distance to the picked tokens x
  (0.5 + 0.5 w / max w)`` (saliency-calibrated diversity). TSTM: each picked
  token links to its most similar picked token of the previous frame when the
  cosine is at least ``threshold`` (0.8), and each tree is mean-pooled, so
  fewer than M slots may be valid. Deviation: FlashVID's inner-LLM pruning
  stage is not part of this interface.
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
  chains = link_chains(parent, linked, jnp.zeros_like(linked))
  flat_chosen = chosen.reshape(-1)
  root = jnp.where(flat_chosen, chains.root, -1)
  return grouped_output(features, root, flat_chosen & chains.survivor, m)


@method_config(traced=("threshold",))
@dataclasses.dataclass(frozen=True)
class FlashVIDConfig(Peer):
  """:func:`flashvid`; tree merging can leave slots empty, so it pads.

  Attributes:
    threshold: the cosine at or above which a picked token joins its predecessor's tree. Traced.
  """

  threshold: Any = 0.8
  pads = True
  CHECKS = {"threshold": (lambda v: (v >= -1) & (v <= 1), "a cosine in [-1, 1]")}

  function = staticmethod(flashvid)


register("flashvid", FlashVIDConfig)
