"""The fused decoding-step kernel (rotary, cache write, attention), in Pallas' interpreter on the CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ottvid_jax.models import decode_attention as da
from ottvid_jax.models import layers
from ottvid_jax.models.generate import Generator, SamplingConfig
from ottvid_jax.models.qwen2_5_vl import Qwen2_5_VL, Qwen2_5_VLConfig


def _inputs(b, slots, heads, kv, dim, index, seed):
  rng = np.random.default_rng(seed)
  draw = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.bfloat16)  # noqa: E731
  qkv, ck, cv = draw(b, 1, heads + 2 * kv, dim), draw(b, slots, kv, dim), draw(b, slots, kv, dim)
  angles = rng.uniform(0, 50, size=(b, 1, dim // 2))
  cos = jnp.asarray(np.cos(np.concatenate([angles, angles], -1)), jnp.float32)  # [B, 1, H] as rope_tables
  sin = jnp.asarray(np.sin(np.concatenate([angles, angles], -1)), jnp.float32)
  valid = (rng.random((b, slots)) > 0.3) & (np.arange(slots) <= index)[None]  # padding and causality
  valid[:, index] = True
  return qkv, cos, sin, ck, cv, jnp.asarray(valid)


def _reference(qkv, cos, sin, ck, cv, index, valid, heads):
  """XLA's decoding path of ``decoder.Attention``, written out."""
  kv = ck.shape[2]
  q, k, v = qkv[:, :, :heads], qkv[:, :, heads:heads + kv], qkv[:, :, heads + kv:]
  q, k = layers.apply_rotary(q, cos, sin), layers.apply_rotary(k, cos, sin)
  ck = jax.lax.dynamic_update_slice(ck, k, (0, index, 0, 0))
  cv = jax.lax.dynamic_update_slice(cv, v, (0, index, 0, 0))
  return layers.attention(q, ck, cv, valid[:, None, None, :], q.shape[-1] ** -0.5), ck, cv


@pytest.mark.parametrize("b,slots,heads,kv,dim,index", [
    (1, 256, 28, 4, 128, 200),  # Qwen2-7B's heads (7 a group), two blocks of slots
    (2, 640, 8, 2, 64, 300),  # batch 2 with padding, five blocks
    (1, 128, 4, 4, 32, 0),  # one block, the first slot, one head a group
])
def test_kernel_matches_xla_path(b, slots, heads, kv, dim, index):
  qkv, cos, sin, ck, cv, valid = _inputs(b, slots, heads, kv, dim, index, seed=slots + index)
  want, want_k, want_v = jax.jit(_reference, static_argnums=(5, 7))(qkv, cos, sin, ck, cv, index, valid, heads)
  fused = jax.jit(lambda *a: da.decode_attention(*a, dim ** -0.5, heads, interpret=True))
  out, new_k, new_v = fused(qkv, cos, sin, ck, cv, jnp.int32(index), valid)
  assert out.shape == want.shape and out.dtype == want.dtype
  err = jnp.linalg.norm((out - want).astype(jnp.float32)) / jnp.linalg.norm(want.astype(jnp.float32))
  assert float(err) < 1e-2  # bf16 operands, blocks combined in another order
  # The cache: every other slot untouched, the new value exact, the new key within a bf16 rounding of XLA's
  # rotary (which rounds after each bf16 operation; the kernel computes it in float32 and rounds once).
  others = np.arange(slots) != index
  np.testing.assert_array_equal(np.asarray(new_k)[:, others], np.asarray(ck)[:, others])
  np.testing.assert_array_equal(np.asarray(new_v), np.asarray(want_v))
  np.testing.assert_allclose(np.asarray(new_k[:, index], np.float32), np.asarray(want_k[:, index], np.float32),
                             rtol=2e-2, atol=2e-2)


def test_masked_query_heads_do_not_leak():
  """Only the valid slots count: a masked slot with a huge value changes nothing."""
  qkv, cos, sin, ck, cv, valid = _inputs(1, 256, 8, 2, 64, 100, seed=0)
  fused = jax.jit(lambda *a: da.decode_attention(*a, 0.125, 8, interpret=True)[0])
  masked = int(np.flatnonzero(~np.asarray(valid[0]))[0])
  poisoned = cv.at[:, masked].set(1e4)
  np.testing.assert_array_equal(fused(qkv, cos, sin, ck, cv, jnp.int32(100), valid),
                                fused(qkv, cos, sin, ck, poisoned, jnp.int32(100), valid))


def test_bad_inputs_are_rejected():
  qkv, cos, sin, ck, cv, valid = _inputs(1, 256, 8, 2, 64, 10, seed=1)
  with pytest.raises(ValueError, match="half precision"):
    da.decode_attention(qkv.astype(jnp.float32), cos, sin, ck, cv, 10, valid, 0.125, 8)
  with pytest.raises(ValueError, match="multiple of 128"):
    da.decode_attention(qkv, cos, sin, ck[:, :200], cv[:, :200], 10, valid[:, :200], 0.125, 8)
  with pytest.raises(ValueError, match="query heads"):
    da.decode_attention(qkv, cos, sin, ck, cv, 10, valid, 0.125, 6)
  assert not da.supported(jnp.float32, 28, 4, 128) and not da.supported(jnp.bfloat16, 40, 2, 128)
  assert da.supported(jnp.bfloat16, 28, 4, 128)


def _tiny_bf16_model():
  return Qwen2_5_VL(Qwen2_5_VLConfig.tiny(), dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))


def test_generation_with_the_kernel_matches_xla():
  """Greedy answers of a batch with left padding: the same tokens with the kernel as with XLA's ops."""
  model = _tiny_bf16_model()
  length = 50
  embeds = jax.random.normal(jax.random.key(1), (2, length, 64), jnp.bfloat16)
  positions = jnp.broadcast_to(jnp.arange(length)[None, None], (3, 2, length))
  mask = jnp.ones((2, length), bool).at[1, :5].set(False)
  sampling = SamplingConfig(max_new_tokens=12)
  with_xla, _ = Generator(model, decode_kernel="xla").generate(embeds, positions, mask, sampling, [])
  fused, _ = Generator(model, decode_kernel="interpret").generate(embeds, positions, mask, sampling, [])
  assert with_xla.shape == (2, 12)
  np.testing.assert_array_equal(fused, with_xla)


def test_kernel_choice():
  model = _tiny_bf16_model()
  assert Generator(model).decode_kernel == "xla"  # "auto" on a CPU
  assert Generator(model, decode_kernel="interpret").decode_kernel == "interpret"
  with pytest.raises(ValueError, match="one GPU"):
    Generator(model, decode_kernel="pallas")  # a CPU: the Triton kernel cannot run here
  with pytest.raises(ValueError, match="decode_kernel"):
    Generator(model, decode_kernel="cuda")
  float32 = Qwen2_5_VL(model.config, dtype=jnp.float32, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
  assert Generator(float32).decode_kernel == "xla"
  with pytest.raises(ValueError, match="half-precision"):
    Generator(float32, decode_kernel="interpret")
