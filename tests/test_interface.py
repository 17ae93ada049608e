"""The compression interface: every registered method keeps its contract, and a new method is one definition.

``TopSalient`` below is a compression method written in this file alone and
registered at run time: it goes through a vmapped hyperparameter sweep and a
backbone's prefill exactly as the shipped methods do.
"""

import dataclasses
from typing import Any, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ottvid_jax import compressor, sweep
from ottvid_jax.compressor import CompressionMethod, CompressionOutput, interface, method_config
from ottvid_jax.models.generate import SamplingConfig
from tests import hf_tiny
from tests.conftest import make_video


@method_config(traced=("share",))
@dataclasses.dataclass(frozen=True)
class TopSalient:
  """Keeps the ``share`` most salient of ``round(T N r)`` slots' worth of tokens and pads the rest.

  ``noise`` fills the padding's token vectors with large values instead of zeros: a backbone that masks
  padding must not notice.
  """

  retention: float = 0.25
  share: Any = 0.5
  noise: bool = False
  pads = True

  def slots(self, frames: int, tokens: int) -> int:
    return max(1, round(frames * tokens * self.retention))

  def apply(self, features, saliency, grid_hw, key: Optional[jax.Array] = None, *,
            diagnostics: bool = False) -> CompressionOutput:
    del grid_hw, key, diagnostics
    t, n, d = features.shape
    m = self.slots(t, n)
    order = jnp.argsort(-saliency.reshape(-1), stable=True)[:m]  # the m most salient, best first
    valid = jnp.arange(m) < jnp.round(self.share * m)
    index = jnp.sort(jnp.where(valid, order, t * n))  # survivors first, in raster order
    valid = index < t * n
    safe = jnp.minimum(index, t * n - 1)
    filler = 1e3 * jnp.sin(jnp.arange(m * d, dtype=jnp.float32)).reshape(m, d) if self.noise else 0.0
    tokens = jnp.where(valid[:, None], jnp.asarray(features).reshape(t * n, d)[safe], filler).astype(features.dtype)
    span = jnp.where(valid[:, None], jnp.stack([safe // n, safe // n], -1), -1)
    return CompressionOutput(tokens, jnp.where(valid, index, -1).astype(jnp.int32), valid, span.astype(jnp.int32))


@pytest.fixture
def toy(monkeypatch):
  monkeypatch.setitem(interface._REGISTRY, "top_salient", TopSalient)  # pylint: disable=protected-access
  return interface.get("top_salient")


SHIPPED = ("divprune", "dycoke", "fastvid", "flashvid", "ottvid", "ottvid_equal_budget", "ottvid_no_spatial",
           "ottvid_uniform_mass", "random", "uniform", "visionzip")


def test_registry_names_options_and_errors():
  assert interface.names() == SHIPPED
  zip_ = interface.make("visionzip", 0.25, dominant_share=0.5)
  assert zip_.retention == 0.25 and zip_.dominant_share == 0.5 and type(zip_).TRACED == ("dominant_share",)
  assert interface.make("ottvid_uniform_mass", 0.1) == compressor.OTTVidConfig(0.1, mass=compressor.MassMode.UNIFORM)
  assert interface.make("fastvid", 0.1).knn == 4 and interface.make("dycoke", 0.1, window=2).window == 2
  with pytest.raises(ValueError, match="unknown method 'nope'"):
    interface.make("nope", 0.1)
  with pytest.raises(ValueError, match="dominant_share must be in"):
    interface.make("visionzip", 0.1, dominant_share=1.5)
  with pytest.raises(ValueError, match="window must be a positive int"):
    interface.make("dycoke", 0.1, window=0)
  with pytest.raises(ValueError, match="retention"):
    interface.make("flashvid", 0.0)
  with pytest.raises(ValueError, match="already registered"):
    interface.register("visionzip", TopSalient)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_method_keeps_the_contract(name):
  t, h, w, d = 4, 5, 6, 8
  features, saliency = make_video(11, t, h, w, d)
  method = interface.make(name, 0.2)
  assert isinstance(method, CompressionMethod)
  out = jax.jit(lambda m, f, s: m.apply(f, s, (h, w), jax.random.key(1)))(method, features, saliency)
  m = method.slots(t, h * w)
  assert out.tokens.shape == (m, d) and out.valid.shape == (m,) and out.diagnostics is None
  if not method.pads:
    assert bool(np.all(out.valid))  # a method that does not pad fills every slot
  leaves, tree = jax.tree.flatten(method)
  assert jax.tree.unflatten(tree, leaves) == method and len(leaves) == len(type(method).TRACED)


def test_ottvid_diagnostics_on_request():
  features, saliency = make_video(2, 3, 4, 4, 8)
  method = interface.make("ottvid", 0.25)
  assert method.apply(features, saliency, (4, 4)).diagnostics is None
  full = method.apply(features, saliency, (4, 4), diagnostics=True)
  assert full.diagnostics.plan.shape[0] == 2
  np.testing.assert_array_equal(full.index, compressor.compress(features, saliency, method, grid_hw=(4, 4)).index)


@pytest.mark.parametrize("name, axis, values", [("visionzip", "dominant_share", [0.25, 0.5, 0.9]),
                                                ("flashvid", "threshold", [0.1, 0.5, 0.95]),
                                                ("fastvid", "salient_share", [0.2, 0.8])])
def test_peer_options_sweep_in_one_program(name, axis, values):
  features, saliency = make_video(6, 6, 4, 5, 8)
  base = interface.make(name, 0.3)
  configs, points = sweep.config_grid(base, **{axis: values})
  swept = jax.jit(jax.vmap(lambda c: c.apply(features, saliency, (4, 5)).index))(configs)

  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def one(c):
    return c.apply(features, saliency, (4, 5)).index

  for row, point in zip(swept, points):
    np.testing.assert_array_equal(row, one(dataclasses.replace(base, **point)))  # vmap == loop, one trace for all values
  assert len({tuple(np.asarray(r)) for r in swept}) > 1  # the option changes the decisions
  with pytest.raises(ValueError, match="not a traced hyperparameter of"):
    sweep.config_grid(base, retention=[0.1])


def test_a_method_defined_in_a_test_sweeps_like_the_shipped_ones(toy):
  features, saliency = make_video(3, 4, 5, 5, 8)
  method = interface.make("top_salient", 0.2)
  assert isinstance(method, toy) and isinstance(method, CompressionMethod)
  configs, points = sweep.config_grid(method, share=[0.25, 0.5, 1.0])
  out = jax.jit(jax.vmap(lambda c: c.apply(features, saliency, (5, 5))))(configs)
  assert [int(v) for v in out.num_valid] == [5, 10, 20]
  best = np.argsort(-saliency.reshape(-1), kind="stable")[:10]
  np.testing.assert_array_equal(np.asarray(out.index[1])[:10], np.sort(best))
  assert points == [{"share": 0.25}, {"share": 0.5}, {"share": 1.0}]


def test_a_method_defined_in_a_test_runs_at_a_backbones_prefill_with_its_padding_masked(toy, tmp_path,
                                                                                        monkeypatch):
  from ottvid_jax import models  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.generate import Generator  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.qwen2_5_vl.generation import VideoBatch, generate, llm_input  # pylint: disable=import-outside-toplevel

  logits = []  # the last-position logits of every prefill that generate runs
  prefill = Generator.prefill
  monkeypatch.setattr(Generator, "prefill", lambda self, *a, **k: logits.append(out := prefill(self, *a, **k)) or out)

  folder = hf_tiny.save_tiny_qwen(str(tmp_path), seed=5)
  model = models.load(folder, dtype=jnp.float32)
  grid = [(4, 6, 8)]  # 4 x 3 x 4 = 48 merged tokens
  ids, pixels = hf_tiny.random_video_inputs(np.random.default_rng(9), grid)
  ids = np.asarray([ids])
  batch = VideoBatch(ids, np.ones_like(ids), pixels, tuple(grid), (1.0,))
  method = interface.make("top_salient", 0.5)  # 24 slots, 12 of them padding
  (_, _, mask), plan = llm_input(model, batch, method)
  video = np.asarray(plan.video[0]) >= 0
  assert video.sum() == 24 and np.asarray(mask)[0][video].sum() == 12
  sampling = SamplingConfig(max_new_tokens=12)
  quiet = generate(model, batch, sampling, method, eos_token_ids=[])
  loud = generate(model, batch, sampling, dataclasses.replace(method, noise=True), eos_token_ids=[])
  assert quiet.visual_tokens[0] == 12
  np.testing.assert_array_equal(quiet.tokens, loud.tokens)  # the padding's values never reach the LLM
  np.testing.assert_allclose(logits[1][0], logits[0][0], rtol=0, atol=1e-6)
  full = generate(model, batch, sampling, dataclasses.replace(method, share=1.0), eos_token_ids=[])
  assert full.visual_tokens[0] == 24
  assert np.abs(np.asarray(logits[2][0]) - np.asarray(logits[0][0])).max() > 1e-3  # the LLM sees the valid slots
