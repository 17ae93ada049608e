"""The config: static budgets, range checks, pytree split, stacking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ottvid_jax as ov


def test_paper_budget_llava_onevision():
  # 32 frames of 14 x 14: r_s = 0.1 ** 0.7 = 0.1995, K = floor(196 * 0.1995) = 39.
  b = ov.budget(ov.OTTVidConfig(), 32, 196)
  assert (b.keep, b.target, b.merges, b.pairs, b.cap, b.slots) == (39, 627, 621, 31, 38, 627)


def test_budget_rounding_variant():
  # 13 x 13 = 169 tokens: 169 * 0.1995 = 33.72 -> floor 33, round 34.
  assert ov.budget(ov.OTTVidConfig(), 32, 169).keep == 33
  rounded = ov.OTTVidConfig(spatial_rounding=ov.SpatialRounding.ROUND)
  assert ov.budget(rounded, 32, 169).keep == 34


def test_budget_slots_when_caps_bind():
  # One frame: no pair can merge, so every kept token survives.
  b = ov.budget(ov.OTTVidConfig(), 1, 196)
  assert b.pairs == 0 and b.slots == b.keep == 39 and b.target == 20
  # gamma = 1: K = N, the caps (T-1)(N-1) cannot absorb T N - M when M < T + N - 1.
  b = ov.budget(ov.OTTVidConfig(retention=0.05, temporal_share=1.0), 4, 49)
  assert b.keep == 49 and b.target == 10 and b.slots == 4 * 49 - 3 * 48


def test_retention_one_keeps_everything():
  b = ov.budget(ov.OTTVidConfig(retention=1.0), 5, 12)
  assert (b.keep, b.target, b.merges, b.slots) == (12, 60, 0, 60)


@pytest.mark.parametrize(
    "changes",
    [
        {"retention": 0.0},
        {"retention": 1.5},
        {"retention": -0.1},
        {"temporal_share": 1.2},
        {"mass_tau": -0.3},
        {"mass_tau": 0.0},
        {"budget_tau": -1.0},
        {"epsilon": 0.0},
        {"locality_scale": -1.0},
        {"cost_threshold": float("nan")},
        {"sinkhorn_iters": 0},
        {"sinkhorn_iters": 2.5},
        {"mass": "uniform"},
        {"budget_tau": np.array([0.3, -0.1])},
    ],
)
def test_bad_config_raises(changes):
  with pytest.raises(ValueError):
    ov.OTTVidConfig(**changes)


def test_traced_and_static_fields():
  cfg = ov.OTTVidConfig()
  leaves, treedef = jax.tree_util.tree_flatten(cfg)
  assert len(leaves) == 5  # tau_m, tau_b, theta, epsilon, lambda_loc
  off = jax.tree_util.tree_flatten(cfg.replace(cost_threshold=None))[1]
  assert off != treedef  # theta=None compiles separately
  assert jax.tree_util.tree_flatten(cfg.replace(retention=0.2))[1] != treedef
  assert jax.tree_util.tree_flatten(cfg.replace(mass_tau=0.5))[1] == treedef


def test_stack_configs():
  cfgs = [ov.OTTVidConfig(mass_tau=t, epsilon=e) for t, e in [(0.1, 0.01), (0.2, 0.02), (0.3, 0.05)]]
  stacked = ov.stack_configs(cfgs)
  np.testing.assert_allclose(stacked.mass_tau, [0.1, 0.2, 0.3], rtol=1e-6)
  assert stacked.mass_tau.dtype == jnp.float32 and stacked.retention == 0.1
  with pytest.raises(ValueError, match="static"):
    ov.stack_configs([ov.OTTVidConfig(), ov.OTTVidConfig(retention=0.2)])
  with pytest.raises(ValueError, match="static"):
    ov.stack_configs([ov.OTTVidConfig(), ov.OTTVidConfig(cost_threshold=None)])
  with pytest.raises(ValueError):
    ov.stack_configs([])


def test_the_library_imports_neither_torch_nor_its_test_references():
  """The compressor, peers, sweeps and evaluation run without torch; tests that need none never import it."""
  import os  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel

  code = ("import sys, tests.conftest, ottvid_jax, ottvid_jax.peers, ottvid_jax.eval, ottvid_jax.sweep, "
          "ottvid_jax.eval.report\n"
          "from ottvid_jax.compressor import interface\n"
          "interface.names()\n"
          "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'transformers', "
          "'chex', 'lmms_eval'})\n"  # (optax comes with ott-jax)
          "assert not loaded, loaded\n")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=root))
  assert result.returncode == 0, result.stderr[-2000:]
