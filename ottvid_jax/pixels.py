"""Training-free pixel features and saliency on a backbone's token grid.

For looking at what OTT-Vid keeps without any checkpoint. The token layout is
Qwen2.5-VL's: one token per 28 x 28 pixel patch of a *pair* of frames (the
vision tower's 2 x 14 x 14 patches merged 2 x 2), so a compressor "frame" is a
temporal grid of two video frames, as it is for the real model.

These are pixel statistics, not a model's features: similar-looking patches
are similar here, but nothing is semantic.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PATCH", "pixel_tokens"]

PATCH = 28  # pixels per token side (14-pixel patches merged 2 x 2)
TEMPORAL = 2  # video frames per token (Qwen2.5-VL's temporal patch)
_CELLS = 4  # each patch is summarised by a 4 x 4 grid of mean colours


def pixel_tokens(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
  """Features and saliency of every 2 x 28 x 28 token of a clip.

  Features: the token's two frames average-pooled to 4 x 4 cells of RGB in
  [0, 1] (2 * 4 * 4 * 3 = 96 values), centred by the clip's mean token so that
  cosine similarities compare patterns rather than overall brightness.

  Saliency (no weights): how much a token stands out in its frame (distance
  to the frame's mean feature) plus how much it moves (distance to the same
  token one temporal grid earlier, and between its own two frames), each
  divided by its frame mean.

  Args:
    frames: ``uint8[F, H, W, 3]`` with H and W multiples of 28. An odd F is
      padded by repeating the last frame, as Qwen2.5-VL's processor does.

  Returns:
    ``(features float32[T, N, 96], saliency float32[T, N], (gh, gw))`` with
    ``T = ceil(F / 2)``, ``gh = H / 28``, ``gw = W / 28``, ``N = gh * gw``,
    tokens in raster order.
  """
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f"frames must be uint8[F, H, W, 3], got shape {frames.shape}")
  count, height, width, _ = frames.shape
  if height % PATCH or width % PATCH:
    raise ValueError(f"frame size {height}x{width} is not a multiple of {PATCH}")
  if count % TEMPORAL:
    frames = np.concatenate([frames, frames[-1:]], axis=0)
  gh, gw = height // PATCH, width // PATCH
  step = PATCH // _CELLS
  x = frames.astype(np.float32) / 255.0
  x = x.reshape(-1, TEMPORAL, gh, _CELLS, step, gw, _CELLS, step, 3).mean(axis=(4, 7))  # [T, 2, gh, 4, gw, 4, 3]
  x = x.transpose(0, 2, 4, 1, 3, 5, 6).reshape(-1, gh * gw, TEMPORAL, _CELLS * _CELLS * 3)  # [T, N, 2, 48]
  features = x.reshape(x.shape[0], gh * gw, -1)  # [T, N, 96]
  features = features - features.mean(axis=(0, 1), keepdims=True)

  contrast = np.linalg.norm(features - features.mean(axis=1, keepdims=True), axis=-1)  # [T, N]
  within = np.linalg.norm(x[:, :, 1] - x[:, :, 0], axis=-1)  # [T, N]
  across = np.linalg.norm(np.diff(features, axis=0), axis=-1)  # [T-1, N]
  across = np.concatenate([across[:1], across], axis=0) if len(across) else np.zeros_like(within)
  motion = within + across

  def unit_mean(v):
    return v / (v.mean(axis=1, keepdims=True) + 1e-6)

  saliency = unit_mean(contrast) + unit_mean(motion)
  return features.astype(np.float32), saliency.astype(np.float32), (gh, gw)
