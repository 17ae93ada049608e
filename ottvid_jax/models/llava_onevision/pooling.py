"""LLaVA's 2-D pooling of a frame's patch grid, and where newline tokens go.

Pooling modes (``mm_spatial_pool_mode``): ``bilinear`` to ceil(g / 2) with
PyTorch's ``align_corners=False`` and no antialiasing (LLaVA-OneVision in
``transformers``: 27 -> 14), ``average`` and ``max`` with kernel = stride = 2
(LLaVA-Video's evaluation: 27 -> 13, the last row and column dropped). The
linear modes are one ``A X A^T`` einsum with a host-built matrix ``A``.

Newline modes (``mm_newline_position``): ``one_token`` (one after the whole
video), ``frame`` (one after each frame), ``grid`` (one after each pooled row),
``no_token``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["POOL_MODES", "NEWLINE_MODES", "pool", "pooled_size", "resize_matrix"]

POOL_MODES = ("bilinear", "average", "max")
NEWLINE_MODES = ("one_token", "frame", "grid", "no_token")


def pooled_size(grid: int, mode: str) -> int:
  if mode not in POOL_MODES:
    raise NotImplementedError(f"pool mode {mode!r}; supported: {POOL_MODES}")
  return math.ceil(grid / 2) if mode == "bilinear" else grid // 2


def resize_matrix(size_in: int, size_out: int, mode: str) -> np.ndarray:
  """``A [out, in]`` with ``pooled = A x`` along one axis (bilinear or average)."""
  a = np.zeros((size_out, size_in), np.float64)
  if mode == "bilinear":
    scale = size_in / size_out
    for i in range(size_out):
      src = max((i + 0.5) * scale - 0.5, 0.0)
      i0 = int(math.floor(src))
      i1 = min(i0 + 1, size_in - 1)
      frac = src - i0
      a[i, i0] += 1.0 - frac
      a[i, i1] += frac
  elif mode == "average":
    for i in range(size_out):
      a[i, 2 * i] = a[i, 2 * i + 1] = 0.5
  else:
    raise ValueError(f"no matrix for pool mode {mode!r}")
  return a.astype(np.float32)


def pool(x: jax.Array, mode: str) -> jax.Array:
  """Pools ``[F, g, g, C]`` (or ``[F, g, g]``) to ``[F, o, o, C]`` (``[F, o, o]``)."""
  grid = x.shape[1]
  out = pooled_size(grid, mode)
  if mode == "max":
    y = x[:, :2 * out, :2 * out]
    y = y.reshape((y.shape[0], out, 2, out, 2) + y.shape[3:])
    return jnp.max(y, axis=(2, 4))
  a = jnp.asarray(resize_matrix(grid, out, mode), x.dtype)
  if x.ndim == 3:
    return jnp.einsum("ih,fhw,jw->fij", a, x, a)
  return jnp.einsum("ih,fhwc,jw->fijc", a, x, a)
