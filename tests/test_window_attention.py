"""Qwen2.5-VL's fused window attention kernel (``models/qwen2_5_vl/window_attention.py``) in Pallas' interpreter,
against XLA's rotary and attention; its Triton lowering; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ottvid_jax.models import layers
from ottvid_jax.models.qwen2_5_vl.window_attention import MAX_WINDOW, PARTIAL_HEAD_GROUPS, window_attention


def _inputs(lengths, heads, head_dim, dtype, seed=0):
  rng = np.random.default_rng(seed)
  p = int(np.sum(lengths))
  qkv = jnp.asarray(rng.normal(size=(p, 3 * heads * head_dim)), dtype)
  angles = rng.uniform(0, 20, size=(p, head_dim // 2))
  angles = np.concatenate([angles, angles], axis=-1)  # Qwen2.5-VL's vision rotary repeats a head's half angles
  return qkv, jnp.asarray(np.cos(angles), jnp.float32), jnp.asarray(np.sin(angles), jnp.float32)


def _reference(qkv, cos, sin, lengths, heads, scale):
  """The tower's XLA path: rotary in the activations' dtype, then attention window by window."""
  p = qkv.shape[0]
  q, k, v = (x[:, 0] for x in jnp.split(qkv.reshape(p, 3, heads, -1), 3, axis=1))
  q, k = layers.apply_rotary(q, cos, sin), layers.apply_rotary(k, cos, sin)
  out, start = [], 0
  for n in lengths:
    part = slice(start, start + n)
    out.append(layers.attention(q[None, part], k[None, part], v[None, part], None, scale)[0].reshape(n, -1))
    start += n
  return jnp.concatenate(out)


@pytest.mark.parametrize("lengths, heads, head_dim", [
    ([16, 7, 16, 3], 2, 16),  # partial windows, as at a grid's right and bottom edges
    ([64, 64, 40], 3, 80),  # Qwen2.5-VL-7B's 8 x 8 windows and head dim (80: halves of 40, padded to 64)
    ([1, 100], 1, 32),  # a one-patch window; a window padded to a block of 128
    ([16, 16, 16], 4, 16),  # full windows: no row masks
    ([5, 3], 2, 8),  # fewer patches than a block's 16 rows: masked loads; a half tile wider than the head
])
def test_float32_kernel_matches_xla(lengths, heads, head_dim):
  qkv, cos, sin = _inputs(lengths, heads, head_dim, jnp.float32)
  got = window_attention(qkv, cos, sin, np.asarray(lengths), heads=heads, scale=head_dim ** -0.5, interpret=True)
  assert got.shape == (sum(lengths), heads * head_dim) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, _reference(qkv, cos, sin, lengths, heads, head_dim ** -0.5), atol=2e-6)


def test_bf16_kernel_under_jit_is_close_to_xla():
  """bf16: the kernel rotates in float32 and rounds once (as HF does); XLA's path rounds after each op."""
  lengths = [64, 64, 17]
  qkv, cos, sin = _inputs(lengths, 2, 80, jnp.bfloat16, seed=1)
  fn = jax.jit(lambda a, c, s: window_attention(a, c, s, np.asarray(lengths), heads=2, scale=80 ** -0.5,
                                                interpret=True))
  got = np.asarray(fn(qkv, cos, sin), np.float32)
  exact = np.asarray(_reference(qkv.astype(jnp.float32), cos, sin, lengths, 2, 80 ** -0.5))
  xla = np.asarray(_reference(qkv, cos, sin, lengths, 2, 80 ** -0.5), np.float32)
  kernel_error, xla_error = np.abs(got - exact).max(), np.abs(xla - exact).max()
  assert kernel_error < 0.03 and kernel_error <= 1.5 * xla_error, (kernel_error, xla_error)


@pytest.mark.parametrize("lengths", [[64] * 256, [64] * 20 + [32, 32, 16]])  # Qwen2.5-VL-7B's; partial windows
def test_kernel_lowers_to_triton_for_a_gpu(lengths):
  """16 heads of 80, one Triton kernel with a program per window (and head group, with partial windows)."""
  p = sum(lengths)
  qkv, cos = jnp.zeros((p, 3840), jnp.bfloat16), jnp.zeros((p, 80), jnp.float32)
  fn = jax.jit(lambda a, c, s: window_attention(a, c, s, np.asarray(lengths), heads=16, scale=80 ** -0.5))
  exported = jax.export.export(fn, platforms=["cuda"],
                               disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")])(
                                   qkv, cos, cos)
  text = exported.mlir_module()
  groups = 1 if min(lengths) == 64 else PARTIAL_HEAD_GROUPS  # partial windows: a program per window and head group
  assert text.count("__gpu$xla.gpu.triton") == 1 and f"grid_x = {len(lengths)} : i32, grid_y = {groups} : i32" in text


@pytest.mark.parametrize("head_groups", [1, 2, 4])
def test_head_groups_split_the_heads_over_programs(head_groups):
  lengths, heads = [16, 7, 16, 3], 4
  qkv, cos, sin = _inputs(lengths, heads, 16, jnp.float32, seed=2)
  got = window_attention(qkv, cos, sin, np.asarray(lengths), heads=heads, scale=0.25, head_groups=head_groups,
                         interpret=True)
  np.testing.assert_allclose(got, _reference(qkv, cos, sin, lengths, heads, 0.25), atol=2e-6)


def test_bad_input_is_a_clear_error():
  qkv, cos, sin = _inputs([8, 8], 2, 16, jnp.float32)
  with pytest.raises(ValueError, match="sum to P"):
    window_attention(qkv, cos, sin, np.asarray([8, 7]), heads=2, scale=0.25)
  with pytest.raises(ValueError, match=f"in \\[1, {MAX_WINDOW}\\]"):
    window_attention(jnp.zeros((200, 96)), jnp.zeros((200, 16)), jnp.zeros((200, 16)), np.asarray([200]), heads=2,
                     scale=0.25)
  with pytest.raises(ValueError, match="cos, sin"):
    window_attention(qkv, cos[:, :8], sin, np.asarray([8, 8]), heads=2, scale=0.25)
  with pytest.raises(ValueError, match="head_groups must divide the 2 heads"):
    window_attention(qkv, cos, sin, np.asarray([8, 8]), heads=2, scale=0.25, head_groups=3)


def test_the_tower_takes_the_kernel_only_where_it_applies():
  from ottvid_jax.models.qwen2_5_vl.vision import _segments, _use_window_kernel

  windows, grid = _segments([64, 64, 40]), _segments([1024, 1024])
  assert jax.default_backend() == "cpu" and not _use_window_kernel("auto", windows, None, jnp.bfloat16)
  assert _use_window_kernel("interpret", windows, None, jnp.float32)
  assert not _use_window_kernel("interpret", grid, None, jnp.float32)  # longer than MAX_WINDOW: cuDNN / XLA
  assert not _use_window_kernel("interpret", windows, windows, jnp.float32)  # saliency needs the queries and keys
  assert not _use_window_kernel("xla", windows, None, jnp.float32)
  with pytest.raises(ValueError, match="kernels must be"):
    _use_window_kernel("triton", windows, None, jnp.float32)
