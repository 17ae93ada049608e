"""Sampling and the decode loop's bookkeeping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ottvid_jax.models.generate import SamplingConfig, decode_text, generator_for, sample


def test_greedy_and_nucleus_sampling():
  logits = jnp.log(jnp.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]))
  np.testing.assert_array_equal(sample(logits, jax.random.key(0), 0.0, 1.0), [1, 0])
  # A tiny nucleus keeps only the most likely token: greedy again.
  np.testing.assert_array_equal(sample(logits, jax.random.key(1), 1.0, 1e-3), [1, 0])
  draws = jax.vmap(lambda k: sample(logits, k, 1.0, 1.0))(jax.random.split(jax.random.key(2), 4000))
  freq = np.bincount(np.asarray(draws[:, 0]), minlength=3) / 4000
  np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.03)
  # top_p = 0.7 keeps {1, 2} for row 0 (0.6 + 0.3 covers 0.7), renormalised to 2/3 and 1/3.
  draws = jax.vmap(lambda k: sample(logits, k, 1.0, 0.7))(jax.random.split(jax.random.key(3), 4000))
  freq = np.bincount(np.asarray(draws[:, 0]), minlength=3) / 4000
  assert freq[0] == 0 and abs(freq[1] - 2 / 3) < 0.03


def test_sampling_config_checks():
  with pytest.raises(ValueError):
    SamplingConfig(max_new_tokens=0)
  with pytest.raises(ValueError):
    SamplingConfig(temperature=-1.0)
  with pytest.raises(ValueError):
    SamplingConfig(top_p=0.0)


def test_decode_text_stops_at_eos():
  class Tok:
    def decode(self, ids, skip_special_tokens):
      return " ".join(map(str, ids))

  assert decode_text(Tok(), np.array([5, 6, 9, 7]), [9]) == "5 6"


def _tiny(seed: int):
  from flax import nnx  # pylint: disable=import-outside-toplevel

  from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VL, Qwen2_5_VLConfig  # pylint: disable=import-outside-toplevel

  return Qwen2_5_VL(Qwen2_5_VLConfig.tiny(), dtype=jnp.float32, param_dtype=jnp.float32, rngs=nnx.Rngs(seed))


def _answer(model):
  embeds = jax.random.normal(jax.random.key(3), (1, 20, 64), jnp.float32)
  positions = jnp.broadcast_to(jnp.arange(20)[None, None], (3, 1, 20))
  return generator_for(model).generate(embeds, positions, jnp.ones((1, 20), bool), SamplingConfig(max_new_tokens=8),
                                       [])[0]


def test_a_model_whose_parameters_were_replaced_gets_a_new_generator():
  from flax import nnx  # pylint: disable=import-outside-toplevel

  model, other = _tiny(0), _tiny(1)
  first, expected = _answer(model), _answer(other)
  assert not np.array_equal(first, expected)
  nnx.update(model, nnx.state(other))  # as sharding.tensor_parallel replaces every array
  np.testing.assert_array_equal(_answer(model), expected)
  assert generator_for(model) is generator_for(model)  # unchanged parameters: the same generator
  assert generator_for(model, refresh=True) is not generator_for(model, refresh=True)


def test_builders_are_cached_per_static_argument_names():
  model = _tiny(0)

  def scaled(part, x, factor, mode):
    return x * factor if mode == "times" else x + factor

  generator = generator_for(model)
  np.testing.assert_allclose(generator.builder(scaled, ("factor",))(jnp.ones(2), factor=3.0, mode=None), [4.0, 4.0])
  # Another set of static names is another program (a string cannot be a traced argument).
  np.testing.assert_allclose(generator.builder(scaled, ("factor", "mode"))(jnp.ones(2), factor=3.0, mode="times"),
                             [3.0, 3.0])
