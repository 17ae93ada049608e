"""Differentiable OTT-Vid: the hard method in the limit, and gradients that check out."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import ottvid_jax as ov
from tests.conftest import make_video


def soft(features, saliency, config, temperature, grid=(6, 6)):
  return ov.soft_compress(features, saliency, config, grid_hw=grid, temperature=temperature)


def test_zero_temperature_limit_is_the_hard_method():
  features, saliency = make_video(0, 5, 6, 6, 16)
  cfg = ov.OTTVidConfig(retention=0.25, budget_tau=100.0, cost_threshold=0.6)  # equal, integral budgets: 5 a pair
  hard = ov.compress(features, saliency, cfg, grid_hw=(6, 6))
  out = jax.jit(soft)(features, saliency, cfg, 1e-4)
  picked = np.asarray(out.selection).argmax(-1)  # [T, K]
  np.testing.assert_array_equal(np.sort(picked, axis=1), hard.diagnostics.selected)
  survivors = np.asarray(out.weight) > 0.5
  anchors = (np.arange(5)[:, None] * 36 + picked).reshape(-1)[survivors]
  order = np.argsort(anchors)
  np.testing.assert_array_equal(anchors[order], hard.index)
  np.testing.assert_allclose(np.asarray(out.tokens)[survivors][order], hard.tokens, atol=1e-5)
  np.testing.assert_allclose(np.asarray(out.weight), np.round(np.asarray(out.weight)), atol=1e-4)
  # At a working temperature the output is soft but keeps about M tokens' worth of weight.
  warm = jax.jit(soft)(features, saliency, cfg, 0.1)
  weight = np.asarray(warm.weight)
  assert np.all((weight >= 0) & (weight <= 1)) and abs(weight.sum() - 45) < 3
  assert np.any((weight > 0.01) & (weight < 0.99))  # genuinely soft
  assert np.abs(np.asarray(warm.tokens)[survivors][order] - np.asarray(hard.tokens)).max() > 1e-3


def loss(features, saliency, config, temperature=0.3, grid=(3, 3)):
  out = soft(features, saliency, config, temperature, grid=grid)
  return jnp.sum(out.weight * jnp.sum(out.tokens ** 2, axis=-1)) / out.weight.shape[0]


def test_gradients_match_finite_differences():
  features, saliency = make_video(1, 3, 3, 3, 4, motion=0.3)
  cfg = ov.OTTVidConfig(retention=0.5, epsilon=0.05)
  jitted = jax.jit(loss)  # one compile for every evaluation below (the configs differ in traced values only)
  check_grads(lambda f: jitted(f, saliency, cfg), (jnp.asarray(features),), order=1, modes=("rev",), eps=1e-2,
              atol=5e-2, rtol=5e-2)
  grads = jax.grad(lambda c: loss(features, saliency, c))(cfg)
  for name in ("mass_tau", "budget_tau", "cost_threshold", "epsilon", "locality_scale"):
    value = float(getattr(cfg, name))
    h = 0.02 * value
    numeric = (jitted(features, saliency, cfg.replace(**{name: value + h}))
               - jitted(features, saliency, cfg.replace(**{name: value - h}))) / (2 * h)
    np.testing.assert_allclose(float(getattr(grads, name)), float(numeric), rtol=0.1, atol=2e-3, err_msg=name)


def test_gradients_reach_every_traced_hyperparameter_and_are_finite_at_real_size():
  features, saliency = make_video(2, 8, 14, 14, 64)
  cfg = ov.OTTVidConfig()
  grad_f, grad_c = jax.jit(jax.grad(lambda f, c: loss(f, saliency, c, 0.05, (14, 14)), argnums=(0, 1)))(
      jnp.asarray(features), cfg)
  assert np.all(np.isfinite(np.asarray(grad_f))) and float(jnp.abs(grad_f).max()) > 0
  # Of the loss's scale (about 15): no step's push-out of picked tokens compounds into the gradient
  # (with its slope in the backward pass this gradient reached 7e15).
  assert float(jnp.abs(grad_f).max()) < 1e3
  for name in ("mass_tau", "budget_tau", "cost_threshold", "epsilon", "locality_scale"):
    value = float(getattr(grad_c, name))
    assert np.isfinite(value) and value != 0.0, name


def test_jit_and_vmap_of_the_gradient():
  videos = [make_video(s, 3, 3, 3, 4) for s in range(2)]
  cfg = ov.OTTVidConfig(retention=0.5, epsilon=0.05)
  grad = jax.grad(lambda f, s: loss(f, s, cfg))
  eager = [grad(jnp.asarray(f), s) for f, s in videos]
  jitted = jax.jit(grad)
  for (f, s), g in zip(videos, eager):
    np.testing.assert_allclose(jitted(jnp.asarray(f), s), g, atol=1e-4, rtol=1e-3)  # CG solves to 1e-4
  batched = jax.jit(jax.vmap(grad))(jnp.stack([v[0] for v in videos]), jnp.stack([v[1] for v in videos]))
  for i, g in enumerate(eager):
    np.testing.assert_allclose(batched[i], g, atol=1e-4, rtol=1e-3)


def test_soft_needs_two_frames():
  features, saliency = make_video(0, 1, 3, 3, 4)
  with pytest.raises(ValueError, match="two frames"):
    ov.soft_compress(features, saliency, grid_hw=(3, 3))
