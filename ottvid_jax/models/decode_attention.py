"""One decoding step's attention as one Pallas (Triton) kernel: rotary, cache write and attention fused.

XLA runs a decode step's rotary embedding and attention as about ten small kernels a layer (the
q/k/v split, rotary, padding, transposes, the two cache writes, two matrix-vector products, the
softmax's reductions), each one to three microseconds of launch-bound work. Here one kernel reads
the fused q/k/v projection, applies the rotary embedding, writes the new key and value into the
cache in place and attends over the cache, split over the slots (flash-decoding: each program
takes one block of slots and leaves its maximum, normaliser and weighted sum), and one small XLA
fusion combines the blocks.

Axes: B batch, S cache slots, K key/value heads, G query heads per key/value head (grouped
query attention; padded to :data:`GROUP_ROWS` rows for the matrix units), H head dim, P blocks of
:data:`SLOT_BLOCK` slots.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

__all__ = ["GROUP_ROWS", "SLOT_BLOCK", "decode_attention", "supported"]

GROUP_ROWS = 16  # query heads of a group padded to this (the smallest matrix-unit tile)
SLOT_BLOCK = 128  # cache slots a program attends over; the cache's slots are a multiple of it
_MASKED = -1e30  # the logit bias of a masked slot (finite: a block with no valid slot stays NaN-free)


def supported(dtype, heads: int, kv_heads: int, head_dim: int) -> bool:
  """The kernel applies to a model: half precision, at most :data:`GROUP_ROWS` query heads a key/value
  head, a power-of-two head dim."""
  return (jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16) and heads % kv_heads == 0
          and heads // kv_heads <= GROUP_ROWS and head_dim & (head_dim - 1) == 0)


def _kernel(index_ref, qkv_ref, cos_ref, sin_ref, bias_ref, k_ref, v_ref, acc_ref, max_ref, sum_ref, k_out_ref,
            v_out_ref, *, heads: int, kv_heads: int, scale: float):
  b, head, split = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  index = index_ref[0]
  dim = qkv_ref.shape[-1]
  half, group = dim // 2, heads // kv_heads
  first, second = pl.ds(0, half), pl.ds(half, half)
  cos1, cos2, sin1, sin2 = (ref[b, part][None, :] for ref in (cos_ref, sin_ref) for part in (first, second))

  def rotary(x1, x2):  # RoPE on the two halves of the head dim: [x1, x2] * cos + [-x2, x1] * sin
    x1, x2 = x1.astype(jnp.float32), x2.astype(jnp.float32)
    return (x1 * cos1 - x2 * sin1).astype(k_ref.dtype), (x2 * cos2 + x1 * sin2).astype(k_ref.dtype)

  # The group's query heads (rows head * G ... head * G + G - 1 of qkv), padded to GROUP_ROWS rows.
  real = jnp.broadcast_to(jax.lax.broadcasted_iota(jnp.int32, (GROUP_ROWS, 1), 0) < group, (GROUP_ROWS, half))
  q1, q2 = rotary(*(plt.load(qkv_ref.at[b, pl.ds(head * group, GROUP_ROWS), part], mask=real, other=0.0)
                    for part in (first, second)))  # [G', H/2] each
  k1, k2 = rotary(qkv_ref[b, pl.ds(heads + head, 1), first], qkv_ref[b, pl.ds(heads + head, 1), second])  # [1, H/2]
  v_new = qkv_ref[b, pl.ds(heads + kv_heads + head, 1), :].astype(v_ref.dtype)  # [1, H]
  start = split * SLOT_BLOCK
  slot = start + jax.lax.broadcasted_iota(jnp.int32, (SLOT_BLOCK, 1), 0)  # [S_blk, 1]
  slots = pl.ds(start, SLOT_BLOCK)
  # The slot being written is read from the new key and value (another program may be writing it).
  keys1 = jnp.where(slot == index, k1, k_ref[b, slots, head, first])  # [S_blk, H/2]
  keys2 = jnp.where(slot == index, k2, k_ref[b, slots, head, second])
  values = jnp.where(slot == index, v_new, v_ref[b, slots, head, :])  # [S_blk, H]
  logits = (plt.dot(q1, keys1, trans_b=True) + plt.dot(q2, keys2, trans_b=True)).astype(jnp.float32) * scale
  logits = logits + bias_ref[b, slots][None, :]  # [G', S_blk]
  maximum = jnp.max(logits, axis=1)
  probs = jnp.exp(logits - maximum[:, None])
  acc_ref[b, head, split] = plt.dot(probs.astype(values.dtype), values).astype(jnp.float32)  # [G', H]
  max_ref[b, head, split] = maximum
  sum_ref[b, head, split] = jnp.sum(probs, axis=1)

  @pl.when(split == 0)
  def _write():
    k_out_ref[b, pl.ds(index, 1), head, first] = k1
    k_out_ref[b, pl.ds(index, 1), head, second] = k2
    v_out_ref[b, pl.ds(index, 1), head, :] = v_new


@functools.partial(jax.named_call, name="decode_attention")
def decode_attention(qkv: jax.Array, cos: jax.Array, sin: jax.Array, cache_k: jax.Array, cache_v: jax.Array,
                     index: jax.Array, valid: jax.Array, scale: float, heads: int, *,
                     interpret: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
  """RoPE on the new token's query and key, the key and value written at slot ``index``, attention
  over the valid slots.

  Args:
    qkv: ``[B, 1, N + 2K, H]`` the fused projection's output (q heads, then k, then v; biases added).
    cos, sin: ``[B, 1, H]`` the new token's rotary tables (:func:`decoder.rope_tables`).
    cache_k, cache_v: ``[B, S, K, H]``; updated in place when the caller donates them.
    index: int32 scalar, the slot of the new token (the same for every row).
    valid: ``bool[B, S]`` slots to attend to (the new slot included).
    scale: the logit scale.
    heads: N, the number of query heads.
    interpret: run the kernel in Pallas' interpreter (CPU tests).

  Returns:
    ``(out [B, 1, N, H], cache_k, cache_v)``: the softmax attention of ``layers.attention``
    over the updated cache, and the cache.
  """
  b, t, rows, dim = qkv.shape
  slots, kv = cache_k.shape[1], cache_k.shape[2]
  if (t != 1 or rows != heads + 2 * kv or not supported(qkv.dtype, heads, kv, dim) or slots % SLOT_BLOCK
      or cache_k.shape != (b, slots, kv, dim) or cache_v.shape != cache_k.shape or cos.shape != (b, 1, dim)):
    raise ValueError(f"decode_attention needs one new token, half precision, slots a multiple of {SLOT_BLOCK}, at "
                     f"most {GROUP_ROWS} query heads a group and a power-of-two head dim: qkv {qkv.shape} "
                     f"{qkv.dtype} for {heads} query heads, cache {cache_k.shape}, rotary {cos.shape}")
  splits = slots // SLOT_BLOCK
  bias = jnp.where(valid, 0.0, _MASKED).astype(jnp.float32)  # [B, S]
  tables = [x[:, 0].astype(qkv.dtype).astype(jnp.float32) for x in (cos, sin)]  # [B, H], rounded as layers.apply_rotary
  whole = lambda shape: pl.BlockSpec(shape, lambda *_: (0,) * len(shape))  # noqa: E731  every program sees all
  parts = (b, kv, splits, GROUP_ROWS)
  acc, maxima, sums, cache_k, cache_v = pl.pallas_call(
      functools.partial(_kernel, heads=heads, kv_heads=kv, scale=scale),
      grid=(b, kv, splits),
      in_specs=[whole((1,)), whole((b, rows, dim)), whole((b, dim)), whole((b, dim)), whole(bias.shape),
                whole(cache_k.shape), whole(cache_v.shape)],
      out_specs=[whole(parts + (dim,)), whole(parts), whole(parts), whole(cache_k.shape), whole(cache_v.shape)],
      out_shape=[jax.ShapeDtypeStruct(parts + (dim,), jnp.float32), jax.ShapeDtypeStruct(parts, jnp.float32),
                 jax.ShapeDtypeStruct(parts, jnp.float32), jax.ShapeDtypeStruct(cache_k.shape, cache_k.dtype),
                 jax.ShapeDtypeStruct(cache_v.shape, cache_v.dtype)],
      input_output_aliases={5: 3, 6: 4},
      compiler_params=plt.CompilerParams(num_warps=4, num_stages=2),
      interpret=interpret,
  )(jnp.reshape(index, (1,)).astype(jnp.int32), qkv[:, 0], *tables, bias, cache_k, cache_v)
  # Combine the blocks: weights relative to the largest maximum of each query head.
  weights = jnp.exp(maxima - jnp.max(maxima, axis=2, keepdims=True))  # [B, K, P, G']
  out = jnp.einsum("bkpg,bkpgh->bkgh", weights, acc) / jnp.einsum("bkpg,bkpg->bkg", weights, sums)[..., None]
  group = heads // kv
  return out[:, :, :group].reshape(b, 1, heads, dim).astype(qkv.dtype), cache_k, cache_v
