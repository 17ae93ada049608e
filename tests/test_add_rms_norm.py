"""The fused residual add + RMSNorm kernel (``models/add_rms_norm.py``) in Pallas' interpreter against XLA's ops
(``layers.RMSNorm`` after ``x + branch``); its Triton lowering; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ottvid_jax.models import layers
from ottvid_jax.models.add_rms_norm import add_rms_norm


def _inputs(rows, width, dtype, seed=0):
  rng = np.random.default_rng(seed)
  x, branch = (jnp.asarray(rng.normal(size=(rows, width)) * 3, dtype) for _ in range(2))
  norm = layers.RMSNorm(width, 1e-6, param_dtype=dtype)
  norm.weight[...] = jnp.asarray(rng.normal(size=width), dtype)
  return x, branch, norm


@pytest.mark.parametrize("rows, width", [(64, 1280), (37, 80), (5, 16)])  # 1280 = 1024 + 256; a partial row block
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_kernel_matches_xla(rows, width, dtype):
  x, branch, norm = _inputs(rows, width, dtype)
  total, normed = add_rms_norm(x, branch, norm.weight[...], norm.eps, interpret=True)
  assert total.dtype == normed.dtype == dtype and total.shape == normed.shape == x.shape
  np.testing.assert_array_equal(total, x + branch)  # one rounding of the sum, as XLA's add
  want = np.asarray(norm(x + branch), np.float32)
  if dtype == jnp.float32:  # the mean's float32 sum runs in another order
    np.testing.assert_allclose(normed, want, rtol=2e-6, atol=2e-6)
  else:  # rounded to bf16 twice, as HF does: equal but for a rare ulp where the float32 mean differs
    got = np.asarray(normed, np.float32)
    assert np.mean(got != want) < 0.01
    np.testing.assert_allclose(got, want, rtol=2 ** -7, atol=0)


def test_without_a_branch_it_is_the_norm():
  x, _, norm = _inputs(48, 80, jnp.float32, seed=1)
  total, normed = add_rms_norm(x.reshape(4, 12, 80), None, norm.weight[...], norm.eps, interpret=True)
  assert total.shape == (4, 12, 80)
  np.testing.assert_array_equal(total, x.reshape(4, 12, 80))
  np.testing.assert_allclose(normed.reshape(48, 80), norm(x), rtol=2e-6, atol=2e-6)


def test_kernel_lowers_to_triton_for_a_gpu():
  """Qwen2.5-VL-7B's tower: 16384 patches of 1280, one Triton kernel with two outputs."""
  x = jnp.zeros((16384, 1280), jnp.bfloat16)
  fn = jax.jit(lambda a, b, w: add_rms_norm(a, b, w, 1e-6))
  exported = jax.export.export(fn, platforms=["cuda"],
                               disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")])(
                                   x, x, jnp.ones(1280, jnp.bfloat16))
  text = exported.mlir_module()
  assert text.count("__gpu$xla.gpu.triton") == 1 and "grid_x = 4096 : i32" in text


def test_bad_input_is_a_clear_error():
  x = jnp.zeros((4, 24))
  with pytest.raises(ValueError, match="multiple of 16"):
    add_rms_norm(x, x, jnp.ones(24), 1e-6)
  with pytest.raises(ValueError, match="weight"):
    add_rms_norm(jnp.zeros((4, 32)), None, jnp.ones(16), 1e-6)
  with pytest.raises(ValueError, match="branch must match"):
    add_rms_norm(jnp.zeros((4, 32)), jnp.zeros((4, 32), jnp.bfloat16), jnp.ones(32), 1e-6)


def test_the_tower_takes_the_kernel_only_where_it_applies():
  from ottvid_jax.models.qwen2_5_vl.vision import _add_norm

  def uses_kernel(kernels, width=32):
    norm = layers.RMSNorm(width, 1e-6)
    x = jnp.ones((4, width))
    return "pallas_call" in str(jax.make_jaxpr(lambda a: _add_norm(norm, a, a, kernels))(x))

  assert jax.default_backend() == "cpu" and not uses_kernel("auto")  # auto: half precision on a GPU only
  assert uses_kernel("interpret") and uses_kernel("pallas")
  assert not uses_kernel("xla")
  assert not uses_kernel("interpret", width=24)  # rows that do not split into Triton tiles: XLA's ops
  with pytest.raises(ValueError, match="kernels must be"):
    uses_kernel("triton")
