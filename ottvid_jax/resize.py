"""Frame resizes equal to the references', in NumPy.

* :func:`resize_bicubic_antialias`: torchvision's
  ``transforms.functional.resize(uint8 tensor, [h, w], BICUBIC, antialias=True)``,
  what qwen-vl-utils' ``fetch_video`` applies (torch's ``_upsample_bicubic2d_aa``).
* :func:`resize_pil_bicubic`: Pillow's ``Image.resize(..., BICUBIC)``, what
  transformers' ``image_transforms.resize`` (LLaVA-NeXT's ``SigLipImageProcessor``)
  applies.

Frames are ``uint8[F, H, W, 3]`` throughout.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["aa_bicubic_weights", "resize_bicubic_antialias", "resize_pil_bicubic"]

_A = -0.5  # torch UpSampleKernel.cpp HelperInterpCubic::aa_filter: Keys' a = -0.5 (PIL's), not -0.75


def _cubic(x: np.ndarray) -> np.ndarray:
  """The Keys cubic convolution kernel with ``a = -0.5`` (support 2)."""
  x = np.abs(x)
  near = ((_A + 2) * x - (_A + 3)) * x * x + 1
  far = ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A
  return np.where(x < 1, near, np.where(x < 2, far, 0.0))


@functools.lru_cache(maxsize=64)
def aa_bicubic_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Taps of an antialiased bicubic resize along one axis: ``(first [out], weights [out, K])``.

  Follows torch's ``_compute_indices_min_size_weights_aa``
  (``aten/src/ATen/native/cpu/UpSampleKernel.cpp``): the support grows with
  the downscale factor (``2 * scale``), output ``i`` is centred on input
  ``scale * (i + 0.5)``, its taps run from ``trunc(center - support + 0.5)``
  to ``trunc(center + support + 0.5)`` clipped to the input, and their
  weights ``cubic((j - center + 0.5) / scale)`` are normalised to sum to one.
  Output ``i`` reads inputs ``first[i] + k``; weights past its window are zero.
  """
  scale = in_size / out_size
  support = 2.0 * scale if scale >= 1.0 else 2.0
  taps = int(np.ceil(support)) * 2 + 1
  invscale = 1.0 / scale if scale >= 1.0 else 1.0
  center = scale * (np.arange(out_size) + 0.5)
  first = np.maximum((center - support + 0.5).astype(np.int64), 0)  # static_cast<int64_t>: toward zero
  size = np.minimum((center + support + 0.5).astype(np.int64), in_size) - first
  size = np.clip(size, 0, taps)
  k = np.arange(taps)
  w = _cubic((k[None, :] + first[:, None] - center[:, None] + 0.5) * invscale)
  w = np.where(k[None, :] < size[:, None], w, 0.0)
  total = w.sum(axis=1, keepdims=True)
  w = np.where(total != 0, w / np.where(total != 0, total, 1.0), 0.0)
  first.flags.writeable = False  # cached: shared by every call
  w.flags.writeable = False
  return first, w


@functools.lru_cache(maxsize=64)
def _band_blocks(in_size: int, out_size: int, block: int = 64) -> tuple:
  """The ``[out, in]`` weight matrix cut into row blocks, each with the input columns it reads.

  Returns:
    ``((start, stop, lo, hi, weights float32[stop - start, hi - lo]), ...)``.
  """
  first, w = aa_bicubic_weights(in_size, out_size)
  taps = w.shape[1]
  dense = np.zeros((out_size, in_size + taps))
  rows = np.arange(out_size)
  for k in range(taps):
    dense[rows, first + k] += w[:, k]
  dense = dense[:, :in_size]
  out = []
  for start in range(0, out_size, block):
    part = dense[start:start + block]
    used = np.flatnonzero(part.any(axis=0))
    lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
    out.append((start, min(start + block, out_size), lo, hi, np.ascontiguousarray(part[:, lo:hi], np.float32)))
  return tuple(out)


def resize_bicubic_antialias(frames: np.ndarray, height: int, width: int) -> np.ndarray:
  """torchvision's antialiased bicubic resize of ``uint8[F, H, W, 3]`` frames to ``uint8[F, height, width, 3]``.

  torchvision (``transforms._functional_tensor.resize``) casts to float32, runs
  ``interpolate(mode="bicubic", antialias=True, align_corners=False)``
  (separable: along the width, then the height, a float intermediate), clamps
  to ``[0, 255]`` and rounds half to even. Here each pass is a banded matrix
  product in float32 (the weights of :func:`aa_bicubic_weights`); its sums
  differ from torch's in the last bits only, so the result equals
  torchvision's on nearly every pixel and differs elsewhere by one level (a sum
  within float32 rounding of a half).
  """
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8[F, H, W, 3], got {frames.dtype}{list(frames.shape)}")
  if height < 1 or width < 1:
    raise ValueError(f"bad target size {height}x{width}")
  if frames.shape[1:3] == (height, width):  # torchvision functional.resize returns the input unchanged
    return frames
  f = frames.shape[0]
  x = frames.transpose(0, 3, 1, 2).astype(np.float32)  # [F, 3, H, W]
  if frames.shape[2] != width:  # along the width: [..., W] @ [W, width], one band of rows at a time
    y = np.empty((f, 3, frames.shape[1], width), np.float32)
    for start, stop, lo, hi, m in _band_blocks(frames.shape[2], width):
      y[..., start:stop] = x[..., lo:hi] @ m.T
    x = y
  if frames.shape[1] != height:  # then along the height: [height, H] @ [..., H, width]
    y = np.empty((f, 3, height, x.shape[-1]), np.float32)
    for start, stop, lo, hi, m in _band_blocks(frames.shape[1], height):
      y[:, :, start:stop, :] = m @ x[:, :, lo:hi, :]
    x = y
  return np.ascontiguousarray(np.rint(np.clip(x, 0, 255)).astype(np.uint8).transpose(0, 2, 3, 1))


def resize_pil_bicubic(frames: np.ndarray, height: int, width: int) -> np.ndarray:
  """Pillow's bicubic resize (antialiased, ``Image.resize((width, height), BICUBIC)``) of ``uint8[F, H, W, 3]``."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8[F, H, W, 3], got {frames.dtype}{list(frames.shape)}")
  if frames.shape[1:3] == (height, width):
    return frames
  return np.stack([
      np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC)) for f in frames
  ])
