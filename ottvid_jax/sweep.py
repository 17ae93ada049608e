"""Hyperparameter sweeps as one compiled program: grids of traced values, spread over devices.

    configs, points = config_grid(OTTVidConfig(), mass_tau=[0.1, 0.3], epsilon=[0.01, 0.05])
    errors = jax.jit(jax.vmap(lambda c: measure(ov.compress(f, s, c, grid_hw=g))))(configs)

The static fields (retention, temporal share, iterations, variants) stay those of
``base``: they compile separately. ``shard_configs`` lays the configuration axis
over all local devices, so the same jitted, vmapped function runs data-parallel.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ottvid_jax.compressor.config import OTTVidConfig, stack_configs

__all__ = ["config_grid", "shard_configs"]


def config_grid(base, **axes: Sequence[float]) -> tuple[object, list[dict]]:
  """The cartesian product of traced hyperparameter values, as one batched config.

  Args:
    base: an :class:`OTTVidConfig` or any compression method's config
      (:mod:`ottvid_jax.compressor.interface`); it supplies the static fields
      and every traced field not swept.
    **axes: traced field name (one of ``type(base).TRACED``) -> values.

  Returns:
    ``(configs, points)``: a config whose traced leaves are ``float32[B]``, and
    the B dicts of swept values in the same (row-major) order.

  Raises:
    ValueError: for a field that is not traced, or an empty axis.
  """
  traced = type(base).TRACED
  for name, values in axes.items():
    if name not in traced:
      raise ValueError(f"{name!r} is not a traced hyperparameter of {type(base).__name__}; sweep one of {traced} "
                       "(static fields compile separately: loop over them)")
    if len(values) == 0:
      raise ValueError(f"no values for {name!r}")
  names = list(axes)
  points = [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]
  return stack_configs([dataclasses.replace(base, **p) for p in points]), points


def shard_configs(configs: OTTVidConfig, devices: Optional[Sequence[jax.Device]] = None) -> tuple[OTTVidConfig, int]:
  """Places a batched config with its batch axis split over ``devices`` (all local ones by default).

  The batch is padded (by repeating its last entry) to a multiple of the device
  count; returns ``(sharded configs, original batch size)`` so that results can
  be cut back with ``[:size]``.
  """
  devices = list(devices or jax.local_devices())
  size = int(jax.tree_util.tree_leaves(configs)[0].shape[0])
  padded = -(-size // len(devices)) * len(devices)

  def pad(x):
    x = jnp.asarray(x)
    return jnp.concatenate([x, jnp.repeat(x[-1:], padded - size, axis=0)]) if padded > size else x

  mesh = Mesh(np.asarray(devices), ("configs",))
  sharding = NamedSharding(mesh, PartitionSpec("configs"))
  return jax.tree_util.tree_map(lambda x: jax.device_put(pad(x), sharding), configs), size
