"""VisionZip (CVPR 2025), per frame: dominant tokens by saliency, contextual tokens by merging."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ottvid_jax.compressor import CompressionOutput, cosine_similarity, method_config, register
from ottvid_jax.peers.common import Peer, evenly, frame_budgets, grouped_output, rank_within, target_count

__all__ = ["VisionZipConfig", "visionzip"]


def visionzip(features, saliency, retention: float, *, grid_hw, key=None, dominant_share: Any = 54 / 64
              ) -> CompressionOutput:
  """VisionZip per frame: dominant tokens by saliency, contextual tokens by merging.

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
  is_dominant = rank_within(saliency.astype(jnp.float32)) < dominant[:, None]  # [T, N]
  rest = ~is_dominant
  position = jnp.cumsum(rest, axis=1) - 1
  is_target = rest & evenly((n - dominant)[:, None], contextual[:, None], position)
  sim = jax.vmap(cosine_similarity)(features)  # [T, N, N]
  nearest = jnp.argmax(jnp.where(is_target[:, None, :], sim, -jnp.inf), axis=-1)  # [T, N]
  local = jnp.where(is_dominant | is_target, jnp.arange(n),
                    jnp.where(jnp.any(is_target, 1, keepdims=True), nearest, -1))
  root = jnp.where(local >= 0, local + n * jnp.arange(t)[:, None], -1).reshape(-1)
  return grouped_output(features, root, (is_dominant | is_target).reshape(-1), m)


@method_config(traced=("dominant_share",))
@dataclasses.dataclass(frozen=True)
class VisionZipConfig(Peer):
  """:func:`visionzip`.

  Attributes:
    dominant_share: the share of a frame's tokens kept as dominant, in [0, 1]. Traced.
  """

  dominant_share: Any = 54 / 64
  CHECKS = {"dominant_share": (lambda v: (v >= 0) & (v <= 1), "in [0, 1]")}

  function = staticmethod(visionzip)


register("visionzip", VisionZipConfig)
