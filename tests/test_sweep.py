"""Sweeps: a grid of traced values in one compiled call, equal to a loop; sharded over devices."""

import os
import subprocess
import sys
import textwrap

import chex
import jax
import numpy as np
import pytest

import ottvid_jax as ov
from ottvid_jax import fidelity, sweep
from tests.conftest import make_video


def measure(features, saliency, config):
  out = ov.compress(features, saliency, config, grid_hw=(5, 5))
  rebuilt = fidelity.rebuild(features, out.tokens, out.valid, out.span)
  return fidelity.reconstruction_error(features, saliency, rebuilt)


def test_grid_sweep_equals_loop():
  features, saliency = make_video(0, 6, 5, 5, 16)
  configs, points = sweep.config_grid(ov.OTTVidConfig(retention=0.2), mass_tau=[0.1, 0.5], budget_tau=[0.1, 1.0],
                                      cost_threshold=[0.2, 0.8], epsilon=[0.01, 0.05])
  assert len(points) == 16 and points[1] == {"mass_tau": 0.1, "budget_tau": 0.1, "cost_threshold": 0.2,
                                             "epsilon": 0.05}

  @jax.jit
  @chex.assert_max_traces(n=1)
  def all_at_once(c):
    return jax.vmap(lambda one: measure(features, saliency, one))(c)

  batched = np.asarray(all_at_once(configs))
  single = jax.jit(lambda c: measure(features, saliency, c))
  looped = np.asarray([single(ov.OTTVidConfig(retention=0.2, **p)) for p in points])
  np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-6)
  assert len(np.unique(np.round(batched, 6))) > 4  # the hyperparameters matter
  with pytest.raises(ValueError, match="not a traced"):
    sweep.config_grid(ov.OTTVidConfig(), retention=[0.1, 0.2])


def test_sharded_sweep_on_several_host_devices(tmp_path):
  script = textwrap.dedent("""
      import os, sys
      os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
      import jax, numpy as np
      import ottvid_jax as ov
      from ottvid_jax import sweep
      from tests.conftest import make_video
      from tests.test_sweep import measure
      assert jax.local_device_count() == 4
      f, s = make_video(0, 6, 5, 5, 16)
      configs, points = sweep.config_grid(ov.OTTVidConfig(retention=0.2), mass_tau=[0.1, 0.3, 0.5],
                                          cost_threshold=[0.2, 0.8])
      sharded, size = sweep.shard_configs(configs)
      assert size == 6 and sharded.mass_tau.shape == (8,) and len(sharded.mass_tau.sharding.device_set) == 4
      fn = jax.jit(jax.vmap(lambda c: measure(f, s, c)))
      out = np.asarray(fn(sharded))[:size]
      ref = np.asarray(fn(configs))
      np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
      print("SHARDED OK")
  """)
  env = dict(os.environ, PYTHONPATH=os.getcwd())
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
  assert "SHARDED OK" in result.stdout, result.stderr[-2000:]
