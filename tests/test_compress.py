"""The whole method: the reference, invariants, transforms, shapes and errors."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ottvid_jax as ov
from tests import reference
from tests.conftest import make_video


@functools.partial(jax.jit, static_argnames="grid")
def run(features, saliency, cfg=None, grid=(7, 7)):
  return ov.compress(features, saliency, cfg, grid_hw=grid)


def assert_same_as_reference(out, features, saliency, grid, **kw):
  index, merged, spans, budgets = reference.compress(features, saliency, grid, **kw)
  valid = np.asarray(out.valid)
  assert list(np.asarray(out.index)[valid]) == index
  np.testing.assert_allclose(np.asarray(out.tokens, np.float32)[valid], np.array(merged), atol=1e-6, rtol=1e-5)
  assert [tuple(s) for s in np.asarray(out.span)[valid]] == spans
  np.testing.assert_array_equal(out.diagnostics.budget, budgets)


@pytest.mark.parametrize(
    "seed,shape,kw",
    [
        (0, (8, 7, 7, 32), {}),
        (1, (6, 5, 9, 16), {"cost_threshold": None}),
        (2, (5, 4, 6, 16), {"retention": 0.25}),
        (3, (9, 3, 11, 8), {"retention": 0.15, "temporal_share": 0.5, "mass_tau": 0.1}),
        (4, (7, 6, 6, 24), {"budget_tau": 1.0, "epsilon": 0.05, "cost_threshold": 0.5}),
        (5, (6, 6, 6, 16), {"uniform_mass": True}),
    ],
)
def test_matches_the_specification(seed, shape, kw):
  t, h, w, d = shape
  features, saliency = make_video(seed, t, h, w, d)
  cfg_kw = {k: v for k, v in kw.items() if k != "uniform_mass"}
  if kw.get("uniform_mass"):
    cfg_kw["mass"] = ov.MassMode.UNIFORM
  out = run(features, saliency, ov.OTTVidConfig(**cfg_kw), (h, w))
  assert_same_as_reference(out, features, saliency, (h, w), **kw)


def test_retention_one_is_identity(video):
  features, saliency = video
  out = run(features, saliency, ov.OTTVidConfig(retention=1.0))
  t, n, d = features.shape
  np.testing.assert_array_equal(out.tokens, features.reshape(t * n, d))
  np.testing.assert_array_equal(out.index, np.arange(t * n))
  assert bool(out.valid.all())
  np.testing.assert_array_equal(out.span, np.repeat(np.arange(t), n)[:, None] * np.ones((1, 2), int))


def test_every_kept_token_ends_in_one_survivor_or_is_pruned(video):
  features, saliency = video
  for cfg in [ov.OTTVidConfig(), ov.OTTVidConfig(cost_threshold=None), ov.OTTVidConfig(cost_threshold=0.6)]:
    out = run(features, saliency, cfg)
    dg = out.diagnostics
    slot = np.asarray(dg.slot).reshape(-1)
    root = np.asarray(dg.root).reshape(-1)
    num_valid = int(out.num_valid)
    dropped = slot < 0
    # Each kept token is in exactly one valid slot, or dropped; each valid slot has members.
    assert np.all(slot[~dropped] < num_valid)
    assert set(slot[~dropped]) == set(range(num_valid))
    # Members of a slot share a root; dropped tokens descend from a pruned token.
    for s in range(num_valid):
      assert len(set(root[slot == s])) == 1
    pruned_flat = np.concatenate([np.zeros(dg.selected.shape[1], bool), np.asarray(dg.pruned).reshape(-1)])
    assert np.all(pruned_flat[root[dropped]])
    if cfg.cost_threshold is None:
      assert not dropped.any()


def test_valid_count_and_raster_order(video):
  features, saliency = video
  b = ov.budget(ov.OTTVidConfig(), 8, 49)
  off = run(features, saliency, ov.OTTVidConfig(cost_threshold=None))
  assert off.tokens.shape == (b.slots, 32) and b.slots == b.target
  assert int(off.num_valid) == b.target
  on = run(features, saliency, ov.OTTVidConfig(cost_threshold=0.6))
  # A strong-pruned match drops its token instead of merging it: the anchors
  # and the count stay, while the merged content changes.
  assert int(on.diagnostics.pruned.sum()) > 0 and int(on.num_valid) == b.target
  np.testing.assert_array_equal(on.index, off.index)
  assert not np.allclose(on.tokens, off.tokens)
  for out in (off, on):
    valid = np.asarray(out.valid)
    idx = np.asarray(out.index)
    assert np.all(valid[: valid.sum()]) and not valid[valid.sum():].any()  # survivors first
    assert np.all(np.diff(idx[valid]) > 0)  # raster order
    assert np.all(idx[~valid] == -1) and np.all(np.asarray(out.tokens)[~valid] == 0)
    span = np.asarray(out.span)[valid]
    assert np.all(span[:, 0] == idx[valid] // 49) and np.all(span[:, 1] >= span[:, 0])


def test_plan_marginals_match_masses(video):
  features, saliency = video
  dg = run(features, saliency).diagnostics
  plan, mass = np.asarray(dg.plan), np.asarray(dg.mass)
  np.testing.assert_allclose(plan.sum(2), mass[:-1], atol=5e-6)  # exact (to rounding) after the last row update
  column_error = np.abs(plan.sum(1) - mass[1:]).sum(1)
  assert np.all(column_error <= np.asarray(dg.marginal_error) + 1e-6)
  assert np.median(column_error) < 1e-4  # 200 updates at eps = 0.01 converge on most pairs
  np.testing.assert_allclose(mass.sum(1), 1.0, atol=1e-6)
  np.testing.assert_allclose(dg.difficulty, (plan * np.asarray(dg.cost)).sum((1, 2)), rtol=1e-5)


def test_budget_invariants_in_pipeline(video):
  features, saliency = video
  dg = run(features, saliency).diagnostics
  b = ov.budget(ov.OTTVidConfig(), 8, 49)
  budgets = np.asarray(dg.budget)
  assert budgets.sum() == b.merges and budgets.max() <= b.cap
  np.testing.assert_array_equal(np.asarray(dg.accepted).sum(1), budgets)
  order = np.argsort(np.asarray(dg.difficulty))
  assert np.all(np.diff(budgets[order]) <= 0)


@pytest.mark.parametrize(
    "shape,cfg",
    [
        ((1, 7, 7, 16), ov.OTTVidConfig()),  # T = 1: no pairs
        ((2, 7, 7, 16), ov.OTTVidConfig()),  # a single pair
        ((5, 2, 2, 8), ov.OTTVidConfig()),  # K = 1
        ((6, 1, 9, 8), ov.OTTVidConfig(retention=0.3)),  # H = 1
        ((6, 9, 1, 8), ov.OTTVidConfig(retention=0.3)),  # W = 1
        ((1, 1, 1, 4), ov.OTTVidConfig()),  # one token
        ((7, 5, 3, 5), ov.OTTVidConfig(retention=0.2)),  # odd everything
        ((4, 3, 3, 8), ov.OTTVidConfig(retention=0.05, temporal_share=1.0)),  # caps bind
    ],
)
def test_edge_shapes(shape, cfg):
  t, h, w, d = shape
  features, saliency = make_video(7, t, h, w, d)
  out = run(features, saliency, cfg, (h, w))
  b = ov.budget(cfg, t, h * w)
  assert out.tokens.shape == (b.slots, d)
  assert int(out.num_valid) == b.slots  # OTT-Vid fills every slot
  assert np.all(np.isfinite(np.asarray(out.tokens)))
  kw = dict(retention=cfg.retention, temporal_share=cfg.temporal_share)
  assert_same_as_reference(out, features, saliency, (h, w), **kw)
  if t == 1:
    assert b.slots == b.keep and bool(out.valid.all())


@pytest.mark.parametrize("cfg", [ov.OTTVidConfig(), ov.OTTVidConfig(cost_threshold=None, mass=ov.MassMode.UNIFORM)])
def test_jit_equals_eager(video, cfg):
  features, saliency = video
  eager = ov.compress(features, saliency, cfg, grid_hw=(7, 7))
  jitted = jax.jit(lambda f, s, c: ov.compress(f, s, c, grid_hw=(7, 7)))(features, saliency, cfg)
  chex.assert_trees_all_close(eager, jitted, atol=1e-5)


def test_vmap_over_configs_equals_loop(video):
  features, saliency = video
  cfgs = [
      ov.OTTVidConfig(mass_tau=mt, budget_tau=bt, cost_threshold=th, epsilon=ep, locality_scale=ls)
      for mt, bt, th, ep, ls in [(0.3, 0.3, 0.3, 0.01, 1.0), (0.1, 1.0, 0.5, 0.05, 0.5),
                                 (0.5, 0.1, 0.9, 0.02, 2.0), (0.2, 0.3, 0.0, 0.01, 0.0)]
  ]
  fn = jax.jit(lambda c: ov.compress(features, saliency, c, grid_hw=(7, 7)))
  batched = jax.jit(jax.vmap(lambda c: ov.compress(features, saliency, c, grid_hw=(7, 7))))(ov.stack_configs(cfgs))
  for i, cfg in enumerate(cfgs):
    single = fn(cfg)
    chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x: x[i], batched), single, atol=1e-5)
  assert len({tuple(np.asarray(i)) for i in batched.index}) == len(cfgs)  # the configs really differ


def test_vmap_over_videos_equals_loop():
  videos = [make_video(s, 5, 4, 4, 8) for s in range(3)]
  feats = np.stack([v[0] for v in videos])
  sals = np.stack([v[1] for v in videos])
  batched = jax.vmap(lambda f, s: ov.compress(f, s, grid_hw=(4, 4)))(feats, sals)
  for i, (f, s) in enumerate(videos):
    chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x: x[i], batched), run(f, s, grid=(4, 4)), atol=1e-5)


def test_new_hyperparameters_do_not_recompile(video):
  features, saliency = video

  @jax.jit
  @chex.assert_max_traces(n=1)
  def fn(c):
    return ov.compress(features, saliency, c, grid_hw=(7, 7))

  first = fn(ov.OTTVidConfig())
  second = fn(ov.OTTVidConfig(mass_tau=0.1, budget_tau=2.0, cost_threshold=0.9, epsilon=0.05, locality_scale=0.3))
  assert not np.array_equal(first.diagnostics.plan, second.diagnostics.plan)
  with pytest.raises(AssertionError):  # a static change does retrace
    fn(ov.OTTVidConfig(retention=0.2))


@pytest.mark.parametrize(
    "features,saliency,grid,cfg,match",
    [
        (np.zeros((4, 9, 3)), np.zeros((4, 8)), (3, 3), None, "saliency shape"),
        (np.zeros((4, 9)), np.zeros((4, 9)), (3, 3), None, r"\[T, N, D\]"),
        (np.zeros((4, 9, 3)), np.zeros((4, 9)), (3, 4), None, "cells"),
        (np.zeros((4, 9, 3)), np.zeros((4, 9)), (3.0, 3), None, "grid_hw"),
        (np.full((4, 9, 3), np.nan), np.ones((4, 9)), (3, 3), None, "NaN"),
        (np.ones((4, 9, 3)), -np.ones((4, 9)), (3, 3), None, "non-negative"),
        (np.ones((4, 9, 3), np.int32), np.ones((4, 9)), (3, 3), None, "floating"),
        (np.ones((4, 9, 3)), np.ones((4, 9)), (3, 3), "not a config", "OTTVidConfig"),
    ],
)
def test_bad_input_raises_before_tracing(features, saliency, grid, cfg, match):
  with pytest.raises(ValueError, match=match):
    ov.compress(features, saliency, cfg, grid_hw=grid)


def test_device_arrays_are_checked_on_the_device(monkeypatch):
  """validate_inputs looks for NaN and negative saliency without copying a device array to the host."""
  from ottvid_jax.compressor import pipeline  # pylint: disable=import-outside-toplevel

  class HostCopyForbidden:
    def __getattr__(self, name):
      return getattr(np, name)

    @staticmethod
    def asarray(value, *args, **kwargs):
      if isinstance(value, jax.Array):
        raise AssertionError("a device array was copied to the host")
      return np.asarray(value, *args, **kwargs)

  monkeypatch.setattr(pipeline, "np", HostCopyForbidden())
  features, saliency = jnp.ones((4, 9, 3)), jnp.ones((4, 9))
  ov.validate_inputs(features, saliency, ov.OTTVidConfig(), (3, 3))
  with pytest.raises(ValueError, match="NaN"):
    ov.validate_inputs(features.at[1, 2, 0].set(jnp.nan), saliency, ov.OTTVidConfig(), (3, 3))
  with pytest.raises(ValueError, match="non-negative"):
    ov.validate_inputs(features, saliency.at[0, 0].set(-1.0), ov.OTTVidConfig(), (3, 3))


def test_shape_errors_raise_under_jit_too():
  with pytest.raises(ValueError, match="saliency shape"):
    jax.jit(lambda f, s: ov.compress(f, s, grid_hw=(3, 3)))(jnp.ones((4, 9, 3)), jnp.ones((4, 8)))


def test_bfloat16_features(video):
  features, saliency = video
  bf16 = jnp.asarray(features, jnp.bfloat16)
  out = run(bf16, saliency)
  assert out.tokens.dtype == jnp.bfloat16
  # Decisions are made on float32 similarities of the bf16 values.
  ref = run(np.asarray(bf16.astype(jnp.float32)), saliency)
  np.testing.assert_array_equal(out.index, ref.index)
  np.testing.assert_allclose(np.asarray(out.tokens, np.float32), np.asarray(ref.tokens), atol=1e-2)
  assert out.diagnostics.plan.dtype == jnp.float32


def test_variants(video):
  features, saliency = video
  base = run(features, saliency, ov.OTTVidConfig(cost_threshold=None))
  uniform = run(features, saliency, ov.OTTVidConfig(cost_threshold=None, mass=ov.MassMode.UNIFORM))
  np.testing.assert_allclose(uniform.diagnostics.mass, 1 / uniform.diagnostics.mass.shape[1])
  assert not np.array_equal(uniform.index, base.index)
  # Mass-weighted merge: same decisions, weighted features.
  weighted = run(features, saliency, ov.OTTVidConfig(cost_threshold=None, merge=ov.MergeMode.MASS_WEIGHTED))
  np.testing.assert_array_equal(weighted.index, base.index)
  dg = weighted.diagnostics
  kept = np.take_along_axis(features, np.asarray(dg.selected)[:, :, None], 1).reshape(-1, features.shape[-1])
  m = np.asarray(dg.mass).reshape(-1)
  slot = np.asarray(dg.slot).reshape(-1)
  for s in range(int(weighted.num_valid)):
    members = slot == s
    expect = (kept[members] * m[members, None]).sum(0) / m[members].sum()
    np.testing.assert_allclose(weighted.tokens[s], expect, rtol=1e-5, atol=1e-6)
  # Mass-normalised score: ranks T / (a b^T); same budgets, other matches.
  norm = run(features, saliency, ov.OTTVidConfig(cost_threshold=None, match_score=ov.MatchScore.MASS_NORMALISED))
  np.testing.assert_array_equal(norm.diagnostics.budget, base.diagnostics.budget)
  a, b = np.asarray(dg.mass)[:-1], np.asarray(dg.mass)[1:]
  score = np.asarray(dg.plan) / (a[:, :, None] * b[:, None, :])
  np.testing.assert_array_equal(norm.diagnostics.parent, score.argmax(1))
