"""OTT-Vid and the paper's ablations of it, as registered compression methods.

=====================  ===============================================================
name                   configuration
=====================  ===============================================================
ottvid                 :class:`OTTVidConfig` at the paper's setting
ottvid_uniform_mass    uniform OT marginals (``mass=MassMode.UNIFORM``: m = 1/K)
ottvid_equal_budget    no budget adaptation (``budget_tau=1e6``: equal merges a pair)
ottvid_no_spatial      no positional cost term (``locality_scale=0``)
=====================  ===============================================================
"""

from __future__ import annotations

import functools

from ottvid_jax.compressor.config import MassMode, OTTVidConfig
from ottvid_jax.compressor.interface import register

__all__ = ["ABLATIONS"]

ABLATIONS = {
    "ottvid_uniform_mass": {"mass": MassMode.UNIFORM},
    "ottvid_equal_budget": {"budget_tau": 1e6},
    "ottvid_no_spatial": {"locality_scale": 0.0},
}

register("ottvid", OTTVidConfig)
for _name, _changes in ABLATIONS.items():
  register(_name, functools.partial(OTTVidConfig, **_changes))
