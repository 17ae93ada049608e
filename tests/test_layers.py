"""Shared layers: the MLP's token slices and zero padding change nothing but memory and speed."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax.models import layers


def _mlp(**kw) -> layers.MLP:
  return layers.MLP(16, 40, bias=True, dtype=jnp.float32, param_dtype=jnp.float32, rngs=nnx.Rngs(0), **kw)


def test_padded_widths():
  assert layers.padded(3420) == 3456 and layers.padded(18944) == 18944 and layers.padded(1) == 128
  assert layers.padded(10, 4) == 12


def test_token_slices_equal_one_pass():
  whole, sliced = _mlp(), _mlp(token_chunk=7)
  x = jax.random.normal(jax.random.key(1), (2, 23, 16))  # 23 tokens: 4 slices of 5-6
  expect = np.asarray(whole(x))
  np.testing.assert_allclose(np.asarray(sliced(x)), expect, atol=1e-6)
  np.testing.assert_allclose(np.asarray(jax.jit(lambda v: sliced(v))(x)), expect, atol=1e-6)
  np.testing.assert_allclose(np.asarray(sliced(x[:, :5])), expect[:, :5], atol=1e-6)  # short: one pass


def test_zero_padded_units_change_nothing():
  plain, pad = _mlp(), _mlp(pad=True)  # 40 -> 128 units
  assert pad.down_proj.kernel.shape == (128, 16) and pad.gate_up_proj.kernel.shape == (16, 256)
  gate_up = np.zeros((16, 256), np.float32)
  gate_up[:, :40], gate_up[:, 128:168] = np.split(np.asarray(plain.gate_up_proj.kernel), 2, axis=1)
  bias = np.zeros(256, np.float32)
  bias[:40], bias[128:168] = np.split(np.asarray(plain.gate_up_proj.bias), 2)
  down = np.zeros((128, 16), np.float32)
  down[:40] = np.asarray(plain.down_proj.kernel)
  pad.gate_up_proj.kernel[...] = gate_up
  pad.gate_up_proj.bias[...] = bias
  pad.down_proj.kernel[...] = down
  pad.down_proj.bias[...] = np.asarray(plain.down_proj.bias)
  x = jax.random.normal(jax.random.key(2), (9, 16))
  np.testing.assert_allclose(np.asarray(pad(x)), np.asarray(plain(x)), atol=1e-6)
