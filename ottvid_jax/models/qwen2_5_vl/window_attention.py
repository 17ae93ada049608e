"""Qwen2.5-VL's window attention as one Pallas (Triton) kernel: rotary, attention and layout in one pass.

In 28 of the tower's 32 blocks every patch attends within its window (8 x 8
patches, 64 tokens, contiguous in the tower's window order). XLA runs such a
block's attention as four kernels after the q/k/v projection: rotary on the
queries, rotary on the keys, a copy of the values out of the fused projection,
and cuDNN's flash attention, which pads each 64-token window to its 128-row tile
and the head dim 80 to 128 (on an H200, 23 + 23 + 27 + 120 us a block for 16384
patches). Here one program per window reads the window's rotary angles once,
then for one head after the other its rows of the fused projection (Triton
prefetches the next head's while this one computes), rotates queries and keys
in float32 registers and writes its part of the output: one pass over the
bytes, about 105 us a block on an H200 (a program per window and head took
146 us; copying its bytes would take about 35). Where
some windows are partial, a program takes a group of heads
(:data:`PARTIAL_HEAD_GROUPS` programs a window).

Loads are unmasked where they stay inside the arrays: a window's tile of B rows
starts at its first patch (or earlier, for the last windows, so that it ends at
P) and takes the neighbouring windows' rows along, a half head's tile of C
columns the next columns of the row; both are zeroed before use, and only the
window's own rows are stored.

The rotary is HF's ``apply_rotary_pos_emb_vision`` (``x * cos + rotate_half(x)
* sin`` in float32, the head's two halves sharing their angles), so the two
halves of a head are loaded separately: ``lo' = lo cos - hi sin``, ``hi' = hi
cos + lo sin``. Logits are float32 sums of products of the rotated bf16 queries
and keys, as in flash attention.

Axes: P patches (window order), G windows, E heads, H head dim, B the block
side (a power of two >= the longest window), C = B_h the padded half head dim.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from ottvid_jax.pallas_blocks import MIN_TILE, power_of_two

__all__ = ["MAX_WINDOW", "PARTIAL_HEAD_GROUPS", "window_attention"]

MAX_WINDOW = 128  # longer segments go to cuDNN
# Programs a window when some windows are partial (frame sides that are not multiples of 112 pixels). On an H200
# at the 7B tower's shape (16 heads, 28 calls a program): 16384 patches in 256 full windows 107.3 / 106.5 / 114.6 us
# with 1 / 2 / 4 groups; 20160 patches in 295 windows (a 30 x 42 grid) 153.6 / 133.8 / 123.5 / 146.7 us with
# 1 / 2 / 4 / 8. Short windows leave a program little work to hide its loads' latency behind.
PARTIAL_HEAD_GROUPS = 4


def _kernel(tiles_ref, offsets_ref, lengths_ref, qkv_ref, cos_ref, sin_ref, out_ref, *, heads: int, head_dim: int,
            block: int, scale: float, in_bounds: bool, full: bool, group: int):
  window = pl.program_id(0)
  first_head = pl.program_id(1) * group
  tile, offset, n = tiles_ref[window], offsets_ref[window], lengths_ref[window]
  half = head_dim // 2
  width, v_width = power_of_two(half, MIN_TILE), power_of_two(head_dim, MIN_TILE)
  rows = pl.ds(tile, block)
  row = jax.lax.broadcasted_iota(jnp.int32, (block, 1), 0)
  mine = (row >= offset) & (row < offset + n)  # [B, 1]: the tile's rows that are this window's
  half_ok = jax.lax.broadcasted_iota(jnp.int32, (1, width), 1) < half  # [1, C]
  head_ok = jax.lax.broadcasted_iota(jnp.int32, (1, v_width), 1) < head_dim  # [1, 2C]
  # Loads are unmasked wherever they stay inside the arrays (they vectorise better): the tile's other rows
  # belong to neighbouring windows and a half's tile reaches into the row's next columns; both are zeroed.
  spill = width <= head_dim

  def load(ref, col0, cols_ok, masked, dtype):  # [B, cols] zero outside this window's rows and cols_ok
    mask = None if in_bounds else mine
    if masked:
      mask = cols_ok if mask is None else mask & cols_ok
    x = plt.load(ref.at[rows, pl.ds(col0, cols_ok.shape[1])], mask=mask, other=None if mask is None else 0.0)
    return jnp.where(mine & cols_ok, x.astype(dtype), 0)

  def load_half(ref, col0):  # [B, C] float32
    return load(ref, col0, half_ok, not spill, jnp.float32)

  cos, sin = load_half(cos_ref, 0), load_half(sin_ref, 0)  # [B, C], the first half's angles
  dtype = qkv_ref.dtype
  d = heads * head_dim

  def rotated(base):
    lo, hi = load_half(qkv_ref, base), load_half(qkv_ref, base + half)
    return (lo * cos - hi * sin).astype(dtype), (hi * cos + lo * sin).astype(dtype)

  def dot(a, b, contract_b):  # float32 accumulation; true float32 for float32 inputs
    return jax.lax.dot_general(a, b, (((1,), (contract_b,)), ((), ())), precision=jax.lax.Precision.HIGHEST,
                               preferred_element_type=jnp.float32)

  key_ok = (row.T >= offset) & (row.T < offset + n)  # [1, B]

  def attend(head, carry):  # heads one after the other: the loop lets Triton prefetch the next head's rows
    q_lo, q_hi = rotated(head * head_dim)
    k_lo, k_hi = rotated(d + head * head_dim)
    logits = jnp.where(key_ok, (dot(q_lo, k_lo, 1) + dot(q_hi, k_hi, 1)) * scale, -jnp.inf)  # [B, B]
    probs = jnp.exp(logits - jnp.max(logits, axis=1, keepdims=True))
    probs = (probs / jnp.sum(probs, axis=1, keepdims=True)).astype(dtype)
    out = dot(probs, load(qkv_ref, 2 * d + head * head_dim, head_ok, True, dtype), 0)  # [B, 2C]
    plt.store(out_ref.at[rows, pl.ds(head * head_dim, v_width)], out.astype(out_ref.dtype),
              mask=head_ok if full else mine & head_ok)
    return carry

  jax.lax.fori_loop(first_head, first_head + group, attend, 0)


def window_attention(qkv: jax.Array, cos: jax.Array, sin: jax.Array, lengths: np.ndarray, *, heads: int,
                     scale: float, head_groups: Optional[int] = None, interpret: bool = False) -> jax.Array:
  """Rotary and softmax attention within contiguous windows, from the fused q/k/v projection.

  Args:
    qkv: ``[P, 3 * E * H]``: queries, keys, values, each heads-major (the
      ``qkv`` projection's output, bias included), patches in window order.
    cos, sin: ``[P, H]`` float32 rotary of each patch; the second half of a
      head's angles repeats the first (Qwen2.5-VL's vision rotary).
    lengths: ``[G]`` window lengths (host ints, summing to P; each at most
      :data:`MAX_WINDOW`); window g holds the patches after windows 0..g-1.
    heads: E.
    scale: the logit scale, ``H ** -0.5``.
    head_groups: programs a window, each for ``E / head_groups`` heads (a
      divisor of E); None: 1 when every window has B patches, else
      :data:`PARTIAL_HEAD_GROUPS` (where it divides E).
    interpret: run in Pallas' interpreter (on a CPU).

  Returns:
    ``[P, E * H]`` attention outputs in ``qkv``'s dtype, heads-major.
  """
  p, width = qkv.shape
  head_dim = width // (3 * heads)
  lengths = np.asarray(lengths, np.int64)
  if width != 3 * heads * head_dim or head_dim % 2 or cos.shape != (p, head_dim) or sin.shape != (p, head_dim):
    raise ValueError(f"window_attention needs qkv [P, 3 * {heads} * H] with H even and cos, sin [P, H]: got "
                     f"{qkv.shape}, {cos.shape}, {sin.shape}")
  if lengths.sum() != p or lengths.min() < 1 or lengths.max() > MAX_WINDOW:
    raise ValueError(f"window lengths must be in [1, {MAX_WINDOW}] and sum to P = {p}, got sum {lengths.sum()}, "
                     f"range [{lengths.min()}, {lengths.max()}]")
  block = power_of_two(lengths.max(), MIN_TILE)
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
  in_bounds = p >= block  # then every window's tile of B rows lies inside the array: the last ones end at P
  tiles = np.minimum(starts, p - block) if in_bounds else starts
  table = power_of_two(lengths.size)  # Triton refs with power-of-two sides
  tables = [jnp.asarray(np.pad(x, (0, table - x.size)), jnp.int32) for x in (tiles, starts - tiles, lengths)]
  full = bool(lengths.min() == block)
  if head_groups is None:
    head_groups = 1 if full or heads % PARTIAL_HEAD_GROUPS else PARTIAL_HEAD_GROUPS
  if head_groups < 1 or heads % head_groups:
    raise ValueError(f"head_groups must divide the {heads} heads, got {head_groups}")
  kernel = functools.partial(_kernel, heads=heads, head_dim=head_dim, block=block, scale=scale, in_bounds=in_bounds,
                             full=full, group=heads // head_groups)
  return pl.pallas_call(
      kernel, grid=(lengths.size, head_groups),
      out_shape=jax.ShapeDtypeStruct((p, heads * head_dim), qkv.dtype),
      compiler_params=plt.CompilerParams(num_warps=4, num_stages=2),  # best of 4/8 warps, 1-3 stages on an H200
      interpret=interpret,
  )(*tables, qkv, cos.astype(jnp.float32), sin.astype(jnp.float32))
