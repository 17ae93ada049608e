"""The peer methods of the paper's comparison, each a registered compression method in its own module.

=====================  ==================================  =========================================
name                   config (options)                    what it is
=====================  ==================================  =========================================
dycoke                 ``DyCokeConfig`` (window)           DyCoke-style similarity merging in windows
                                                           of 4 frames, no OT
visionzip              ``VisionZipConfig``                 VisionZip: dominant tokens by saliency +
                       (dominant_share)                    contextual tokens merged
fastvid                ``FastVIDConfig`` (salient_share,   FastVID-style: DySeg + salient +
                       knn, segment_cuts,                  density-peak context tokens
                       segment_threshold)
divprune               ``DivPruneConfig``                  DivPrune: max-min diversity over the video
flashvid               ``FlashVIDConfig`` (threshold)      FlashVID-style: calibrated max-min
                                                           diversity per frame + tree merging (pads)
random                 ``RandomConfig`` (seed)             M random tokens
uniform                ``UniformConfig``                   a uniform spatial stride per frame
=====================  ==================================  =========================================

Each module holds the method's pure function (``peers.visionzip.visionzip``)
and its config. OTT-Vid and its ablations (``ottvid``, ``ottvid_uniform_mass``,
``ottvid_equal_budget``, ``ottvid_no_spatial``) are registered by
:mod:`ottvid_jax.compressor.variants`. Every method has the same
retention-dependent budget (M = round(T N r)) and the same defaults at 10 %,
15 % and 25 % (their papers use one setting across these ratios); see
``docs/PEERS.md``. Continuous options are traced (sweepable with
:func:`ottvid_jax.sweep.config_grid`), counts are static.
"""

from __future__ import annotations

from typing import Optional

import jax

from ottvid_jax.compressor import CompressionOutput, interface
from ottvid_jax.peers.divprune import DivPruneConfig
from ottvid_jax.peers.dycoke import DyCokeConfig
from ottvid_jax.peers.fastvid import FastVIDConfig
from ottvid_jax.peers.flashvid import FlashVIDConfig
from ottvid_jax.peers.random_tokens import RandomConfig, UniformConfig
from ottvid_jax.peers.visionzip import VisionZipConfig

__all__ = ["DivPruneConfig", "DyCokeConfig", "FastVIDConfig", "FlashVIDConfig", "RandomConfig", "UniformConfig",
           "VisionZipConfig", "run"]


def run(name: str, features, saliency, retention: float, grid_hw: tuple[int, int],
        key: Optional[jax.Array] = None, **options) -> CompressionOutput:
  """Compresses one video with the registered method ``name`` at its default options (or ``options``).

  Raises:
    ValueError: for an unknown name, or ``random`` without a key.
  """
  method = interface.make(name, retention, **options)
  if name == "random" and key is None:
    raise ValueError("the random method needs a PRNG key")
  return method.apply(features, saliency, grid_hw, key)
