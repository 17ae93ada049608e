"""The saliency kernel (``models/received_attention.py``): Pallas passes (in the interpreter) against the XLA form
and a float64 NumPy reference; padding, shapes, lowering to Triton, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ottvid_jax.models.received_attention import received_attention


def _reference(q, k, scale, lengths):
  """float64: per segment, softmax over the real keys, mean over the real queries and the heads."""
  q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
  out = np.zeros(q.shape[:2])
  for g, n in enumerate(lengths):
    logits = np.einsum("qeh,keh->eqk", q[g, :n], k[g, :n]) * scale
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out[g, :n] = probs.mean(axis=(0, 1))
  return out


@pytest.mark.parametrize("segments, length, heads, dim, lengths", [
    (3, 100, 2, 80, [100, 37, 64]),  # Qwen's head dim, partial segments, a length not a block multiple
    (2, 64, 3, 16, None),  # exactly one block
    (1, 200, 2, 72, [1]),  # SigLIP's head dim; a segment of one token
])
@pytest.mark.parametrize("implementation", ["xla", "interpret"])
def test_matches_the_float64_reference(segments, length, heads, dim, lengths, implementation):
  rng = np.random.default_rng(length)
  q, k = (jnp.asarray(rng.normal(size=(segments, length, heads, dim)) * 2, jnp.float32) for _ in range(2))
  n = [length] * segments if lengths is None else lengths
  got = received_attention(q, k, dim ** -0.5, None if lengths is None else jnp.asarray(n, jnp.int32),
                           implementation=implementation)
  assert got.shape == (segments, length) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, _reference(q, k, dim ** -0.5, n), atol=2e-7, rtol=2e-5)
  np.testing.assert_allclose(np.asarray(got).sum(-1), 1.0, atol=1e-5)
  for g, m in enumerate(n):
    assert np.all(np.asarray(got)[g, m:] == 0)  # padding receives nothing


def test_bf16_kernel_equals_the_xla_form_under_jit():
  rng = np.random.default_rng(0)
  q, k = (jnp.asarray(rng.normal(size=(4, 130, 4, 80)), jnp.bfloat16) for _ in range(2))
  lengths = jnp.asarray([130, 129, 65, 3], jnp.int32)
  fn = jax.jit(received_attention, static_argnums=2, static_argnames="implementation")
  xla = fn(q, k, 80 ** -0.5, lengths, implementation="xla")
  kernel = fn(q, k, 80 ** -0.5, lengths, implementation="interpret")
  np.testing.assert_allclose(kernel, xla, atol=1e-7, rtol=1e-5)
  np.testing.assert_array_equal(received_attention(q, k, 80 ** -0.5, lengths), xla)  # auto: XLA off a GPU


@pytest.mark.parametrize("segments, length", [(16, 1024), (9, 729)])  # Qwen2.5-VL-7B's grids; SigLIP's frames
def test_kernel_lowers_to_triton_for_a_gpu(segments, length):
  """Two Triton kernels, one program per (segment, head, block of 64). The CPU cannot run them, but it can
  lower them."""
  q = jnp.zeros((segments, length, 16, 80), jnp.bfloat16)
  fn = jax.jit(lambda q, k: received_attention(q, k, 80 ** -0.5, implementation="pallas"))
  exported = jax.export.export(fn, platforms=["cuda"],
                               disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")])(
                                   q, q)
  text = exported.mlir_module()
  grid = f"grid_x = {segments} : i32, grid_y = 16 : i32, grid_z = {-(-length // 64)} : i32"
  assert text.count("__gpu$xla.gpu.triton") == 2 and grid in text


def test_head_dims_split_into_power_of_two_chunks():
  """The kernels read a head's columns in place, as chunks that Triton's dot products take."""
  from ottvid_jax.models.received_attention import _chunks

  assert _chunks(80) == ((0, 64), (64, 16))  # Qwen2.5-VL's vision heads: no padded products
  assert _chunks(72) == ((0, 64), (64, 16))  # SigLIP's: the last chunk's 8 extra columns are masked
  assert _chunks(128) == ((0, 128),) and _chunks(8) == ((0, 16),) and _chunks(112) == ((0, 64), (64, 32), (96, 16))


def test_bad_input_is_a_clear_error():
  q = jnp.zeros((2, 8, 1, 16))
  with pytest.raises(ValueError, match="implementation"):
    received_attention(q, q, 0.25, implementation="cuda")
  with pytest.raises(ValueError, match=r"\[G, L, E, H\]"):
    received_attention(q, q[:, :4], 0.25)
  with pytest.raises(ValueError, match="lengths"):
    received_attention(q, q, 0.25, jnp.ones(3, jnp.int32))
