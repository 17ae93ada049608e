"""Sampling and the decode loop's bookkeeping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ottvid_jax.models.generate import SamplingConfig, decode_text, sample


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
