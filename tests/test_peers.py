"""The peer methods: their common invariants, and each one's defining behaviour."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ottvid_jax import peers
from ottvid_jax.compressor import interface
from ottvid_jax.peers import common, fastvid
from tests.conftest import make_video

ALL = sorted(interface.names())


@functools.partial(jax.jit, static_argnames=("name", "retention", "grid"))
def run(name, features, saliency, retention, grid):
  return peers.run(name, features, saliency, retention, grid, key=jax.random.key(0))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("retention", [0.1, 0.25])
def test_common_invariants(name, retention):
  t, h, w, d = 8, 7, 7, 16
  features, saliency = make_video(3, t, h, w, d)
  out = run(name, features, saliency, retention, (h, w))
  m = round(t * h * w * retention)
  valid = np.asarray(out.valid)
  index = np.asarray(out.index)[valid]
  assert out.tokens.shape == (m, d) and valid.sum() <= m
  assert np.all(valid[:valid.sum()]) and not valid[valid.sum():].any()  # survivors first
  assert np.all(np.diff(index) > 0) and index.min() >= 0 and index.max() < t * h * w  # raster order, unique
  span = np.asarray(out.span)[valid]
  assert np.all(span[:, 0] <= index // (h * w)) and np.all(span[:, 1] >= span[:, 0])
  assert np.all(np.isfinite(np.asarray(out.tokens)))
  if name not in ("flashvid",):  # tree merging may leave slots empty; every other method fills M
    assert valid.sum() == m


@pytest.mark.parametrize("name", [n for n in ALL if not n.startswith("ottvid") and n != "random"])
def test_retention_one_keeps_every_token(name):
  # Independent 64-d tokens: no two are similar enough for FlashVID's 0.8 tree merging.
  rng = np.random.default_rng(4)
  features = rng.normal(size=(4, 9, 64)).astype(np.float32)
  out = run(name, features, rng.random((4, 9)).astype(np.float32), 1.0, (3, 3))
  np.testing.assert_array_equal(out.index, np.arange(36))
  np.testing.assert_allclose(out.tokens, features.reshape(36, 64), atol=1e-6)


def test_divprune_picks_spread_out_tokens():
  # Four tight clusters of 10 tokens: four picks land in four different clusters.
  rng = np.random.default_rng(0)
  centres = np.eye(4, 8) * 5
  features = (np.repeat(centres, 10, axis=0) + 0.01 * rng.normal(size=(40, 8))).astype(np.float32)[None]
  out = run("divprune", features, np.ones((1, 40), np.float32), 0.1, (5, 8))
  assert sorted(np.asarray(out.index) // 10) == [0, 1, 2, 3]


def test_visionzip_keeps_the_most_salient():
  features, saliency = make_video(5, 2, 7, 7, 8)
  out = run("visionzip", features, saliency, 0.25, (7, 7))  # 12 or 13 a frame, 10 / 11 dominant
  kept = set(np.asarray(out.index).tolist())
  for f in range(2):
    top = np.argsort(-saliency[f])[:10] + 49 * f
    assert set(top.tolist()) <= kept


def test_dycoke_merges_static_tokens():
  # A static video: frames 1-3 repeat frame 0, so their tokens merge into frame 0's.
  base = np.random.default_rng(1).normal(size=(1, 16, 8)).astype(np.float32)
  features = np.repeat(base, 4, axis=0)
  features[2, 5] += 3.0  # one moving token
  out = run("dycoke", features, np.ones((4, 16), np.float32), 0.3, (4, 4))
  index = np.asarray(out.index)
  assert set(range(16)) <= set(index.tolist()) and 2 * 16 + 5 in index.tolist()
  span = np.asarray(out.span)[index < 16]
  assert (span[:, 1] == 3).sum() >= 13  # frame-0 tokens absorbed their repeats (but where a later copy is kept)


def test_fastvid_segments_cut_at_scene_changes():
  unit = jnp.asarray(np.concatenate([np.ones((3, 4, 2)), np.tile([1.0, -1.0], (3, 4, 1))]), jnp.float32)
  unit = unit / jnp.linalg.norm(unit, axis=-1, keepdims=True)
  np.testing.assert_array_equal(fastvid.segments(unit, 0, 0.9), [0, 0, 0, 1, 1, 1])


def test_flashvid_tree_merges_repeated_frames():
  base = np.random.default_rng(2).normal(size=(1, 25, 8)).astype(np.float32)
  features = np.repeat(base, 4, axis=0)
  out = run("flashvid", features, np.ones((4, 25), np.float32), 0.2, (5, 5))
  valid = np.asarray(out.valid)
  assert valid.sum() == 5 and np.all(np.asarray(out.index)[valid] < 25)  # one frame's picks, spanning all four
  assert np.all(np.asarray(out.span)[valid][:, 1] == 3)


def test_frame_budgets_and_errors():
  np.testing.assert_array_equal(common.frame_budgets(4, 10), [3, 3, 2, 2])
  with pytest.raises(ValueError, match="unknown method"):
    peers.run("nope", np.zeros((1, 4, 2)), np.zeros((1, 4)), 0.5, (2, 2))
  with pytest.raises(ValueError, match="key"):
    peers.run("random", np.zeros((1, 4, 2)), np.zeros((1, 4)), 0.5, (2, 2))
