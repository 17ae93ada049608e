"""OTT-Vid's ablations and the peer methods, behind one call: ``run(name, features, saliency, r, grid_hw)``.

=====================  =========================================================================
name                   what it is
=====================  =========================================================================
ottvid                 the method at the paper setting (``ov.compress``)
ottvid_uniform_mass    ablation: uniform OT marginals (m = 1/K)
ottvid_equal_budget    ablation: no budget adaptation (tau_b = 1e6: equal merges per pair)
ottvid_no_spatial      ablation: cost without the positional term (lambda_loc = 0)
dycoke                 DyCoke-style similarity merging in windows of 4 frames, no OT
visionzip              VisionZip: dominant tokens by saliency + contextual tokens merged
fastvid                FastVID-style: DySeg + salient + density-peak context tokens
divprune               DivPrune: max-min diversity over the whole video
flashvid               FlashVID-style: calibrated max-min diversity per frame + tree merging
random                 M random tokens (``key`` required)
uniform                a uniform spatial stride per frame
=====================  =========================================================================

Every method has the same retention-dependent budget (M = round(T N r)) and the
same defaults at 10 %, 15 % and 25 % (their papers use one setting across
these ratios); see ``docs/PEERS.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Union

import jax

from ottvid_jax.compressor.config import MassMode, OTTVidConfig, budget
from ottvid_jax.compressor.pipeline import CompressionOutput, compress
from ottvid_jax.peers.common import target_count
from ottvid_jax.peers.methods import divprune, dycoke, fastvid, flashvid, random_keep, uniform_keep, visionzip

__all__ = ["METHODS", "PeerConfig", "apply", "fills_slots", "run", "slot_count"]


def _ottvid(**changes) -> Callable:
  def method(features, saliency, retention, *, grid_hw, key=None):
    del key
    return compress(features, saliency, OTTVidConfig(retention=retention, **changes), grid_hw=grid_hw)
  return method


METHODS: dict[str, Callable[..., CompressionOutput]] = {
    "ottvid": _ottvid(),
    "ottvid_uniform_mass": _ottvid(mass=MassMode.UNIFORM),
    "ottvid_equal_budget": _ottvid(budget_tau=1e6),
    "ottvid_no_spatial": _ottvid(locality_scale=0.0),
    "dycoke": dycoke,
    "visionzip": visionzip,
    "fastvid": fastvid,
    "divprune": divprune,
    "flashvid": flashvid,
    "random": random_keep,
    "uniform": uniform_keep,
}


def run(name: str, features, saliency, retention: float, grid_hw: tuple[int, int],
        key: Optional[jax.Array] = None) -> CompressionOutput:
  """Compresses one video with method ``name`` (see the table above).

  Raises:
    ValueError: for an unknown name, or ``random`` without a key.
  """
  if name not in METHODS:
    raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
  if name == "random" and key is None:
    raise ValueError("the random method needs a PRNG key")
  return METHODS[name](features, saliency, retention, grid_hw=grid_hw, key=key)


@dataclasses.dataclass(frozen=True)
class PeerConfig:
  """A peer method and its retention, usable wherever an :class:`OTTVidConfig` is (all static).

  ``random`` draws with the fixed key ``seed``.
  """

  name: str
  retention: float
  seed: int = 0

  def __post_init__(self):
    if self.name not in METHODS:
      raise ValueError(f"unknown method {self.name!r}; choose one of {sorted(METHODS)}")
    target_count(1, 1, self.retention)  # checks the range


jax.tree_util.register_dataclass(PeerConfig, data_fields=[], meta_fields=["name", "retention", "seed"])

Compression = Union[OTTVidConfig, PeerConfig]


def slot_count(compression: Compression, frames: int, tokens: int) -> int:
  """The static output length of ``compression`` on a ``[frames, tokens, D]`` video."""
  if isinstance(compression, OTTVidConfig):
    return budget(compression, frames, tokens).slots
  return target_count(frames, tokens, compression.retention)


def fills_slots(compression: Compression) -> bool:
  """Whether every output slot is always valid (no padding to mask)."""
  return isinstance(compression, OTTVidConfig) or compression.name != "flashvid"


def apply(compression: Compression, features, saliency, grid_hw: tuple[int, int]) -> CompressionOutput:
  """Runs OTT-Vid (an :class:`OTTVidConfig`) or a peer (a :class:`PeerConfig`) on one video."""
  if isinstance(compression, OTTVidConfig):
    return compress(features, saliency, compression, grid_hw=grid_hw)
  return run(compression.name, features, saliency, compression.retention, grid_hw,
             key=jax.random.key(compression.seed))
