"""A residual add and the RMSNorm after it as one Pallas (Triton) kernel.

Around the cuBLAS GEMMs of a transformer block XLA runs ``x + branch`` and the
RMSNorm that follows as separate kernels: in Qwen2.5-VL's vision tower (16384
patches of 1280 on an H200) the add (40 us), the normalisation (29 us, which
recomputes the add) and the scale by the norm's weight (29 us, HF casts back to
the activations' dtype before scaling, which XLA does not fuse into the
normalisation) each read and write the [P, D] activations. One program per
block of rows here reads ``x`` and the branch once and writes the sum and its
normalised, scaled form: 42 us in the tower (2.7 ms for its 64 norms, where
XLA's kernels took 4.9 ms).

The arithmetic is HF's ``Qwen2RMSNorm`` after a residual add in the
activations' dtype: ``s = x + branch`` rounded to the dtype; the mean of
``s ** 2`` and ``s * rsqrt(mean + eps)`` in float32, rounded to the dtype;
then times the weight. Only the order of the mean's float32 sum differs from
XLA's.

Axes: P rows (tokens), D features, R rows a program; D is split into
power-of-two column chunks (Triton tiles have power-of-two sides), e.g. 1280 =
1024 + 256.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from ottvid_jax.pallas_blocks import MIN_TILE, power_of_two

__all__ = ["ROW_ELEMENTS", "add_rms_norm", "supported"]

ROW_ELEMENTS = 8192  # a program's rows hold about this many elements: R = 8192 // 2048 = 4 rows of 1280 (2 to 16
# rows measured the same on an H200)


def supported(width: int) -> bool:
  """Whether rows of ``width`` features split into Triton chunks (a multiple of :data:`MIN_TILE`)."""
  return width > 0 and width % MIN_TILE == 0


def _chunks(width: int) -> list[tuple[int, int]]:
  """``[(offset, size)]``: ``width`` as a sum of powers of two, largest first."""
  out, offset = [], 0
  for bit in reversed(range(width.bit_length())):
    if width >> bit & 1:
      out.append((offset, 1 << bit))
      offset += 1 << bit
  return out


def _kernel(*refs, rows: int, total: int, width: int, eps: float, has_branch: bool):
  if has_branch:
    x_ref, branch_ref, weight_ref, sum_ref, out_ref = refs
  else:
    x_ref, weight_ref, out_ref = refs
  first = pl.program_id(0) * rows
  block = pl.ds(first, rows)
  ok = None if total % rows == 0 else first + jax.lax.broadcasted_iota(jnp.int32, (rows, 1), 0) < total  # [R, 1]
  dtype = x_ref.dtype

  def load(ref, cols):
    return plt.load(ref.at[block, cols], mask=ok, other=None if ok is None else 0.0)

  chunks = _chunks(width)
  sums, squares = [], jnp.zeros((rows, 1), jnp.float32)
  for offset, size in chunks:
    cols = pl.ds(offset, size)
    s = load(x_ref, cols)  # [R, chunk]
    if has_branch:
      s = (s.astype(jnp.float32) + load(branch_ref, cols).astype(jnp.float32)).astype(dtype)
      plt.store(sum_ref.at[block, cols], s, mask=ok)
    s = s.astype(jnp.float32)
    sums.append(s)
    squares += jnp.sum(s * s, axis=1, keepdims=True)
  inverse = jax.lax.rsqrt(squares / width + eps)  # [R, 1]
  for (offset, size), s in zip(chunks, sums):
    weight = plt.load(weight_ref.at[pl.ds(offset, size)]).astype(jnp.float32)  # [chunk]
    normed = (s * inverse).astype(dtype).astype(jnp.float32) * weight[None, :]
    plt.store(out_ref.at[block, pl.ds(offset, size)], normed.astype(out_ref.dtype), mask=ok)


def add_rms_norm(x: jax.Array, branch: Optional[jax.Array], weight: jax.Array, eps: float, *,
                 interpret: bool = False) -> tuple[jax.Array, jax.Array]:
  """``s = x + branch`` and HF's RMSNorm of ``s``, in one pass.

  Args:
    x: ``[..., D]`` activations (the residual stream), D a multiple of 16
      (:func:`supported`).
    branch: the same shape and dtype (a block's attention or MLP output), or
      ``None`` to normalise ``x`` alone.
    weight: ``[D]`` the norm's scale.
    eps: added to the mean square.
    interpret: run in Pallas' interpreter (on a CPU).

  Returns:
    ``(s, weight * rms_normalise(s))``: ``s`` in ``x``'s dtype (``x`` itself
    when ``branch`` is ``None``), the normalised rows in the dtype that
    ``weight * x`` has.
  """
  width = x.shape[-1]
  if not supported(width) or weight.shape != (width,):
    raise ValueError(f"add_rms_norm needs rows of a multiple of {MIN_TILE} features and weight [D]: got x "
                     f"{x.shape}, weight {weight.shape}")
  if branch is not None and (branch.shape != x.shape or branch.dtype != x.dtype):
    raise ValueError(f"branch must match x: {branch.shape} {branch.dtype} against {x.shape} {x.dtype}")
  shape = x.shape
  x2 = x.reshape(-1, width)
  total = x2.shape[0]
  rows = min(power_of_two(total), max(1, ROW_ELEMENTS // power_of_two(width)))
  kernel = functools.partial(_kernel, rows=rows, total=total, width=width, eps=eps, has_branch=branch is not None)
  normed = jax.ShapeDtypeStruct(x2.shape, jnp.result_type(weight.dtype, x.dtype))
  args = (x2,) if branch is None else (x2, branch.reshape(-1, width))
  outs = pl.pallas_call(
      kernel, grid=(pl.cdiv(total, rows),),
      out_shape=(normed,) if branch is None else (jax.ShapeDtypeStruct(x2.shape, x.dtype), normed),
      compiler_params=plt.CompilerParams(num_warps=4, num_stages=1),
      interpret=interpret,
  )(*args, weight)
  if branch is None:
    return x, outs[0].reshape(shape)
  return outs[0].reshape(shape), outs[1].reshape(shape)
