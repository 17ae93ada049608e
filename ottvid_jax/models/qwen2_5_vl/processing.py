"""Qwen2.5-VL inputs: video frames to patches, the prompt to token ids.

The pixel path is qwen-vl-utils 0.0.14's ``fetch_video`` followed by the HF
processor's normalisation: per-frame pixel bounds from :class:`QwenPixels`
(the per-frame cap shrinks with the number of frames decoded), qwen-vl-utils'
own ``smart_resize`` to multiples of 28, torchvision's antialiased bicubic
resize (:func:`ottvid_jax.resize.resize_bicubic_antialias`), then
``Qwen2VLVideoProcessor``'s fused rescale-and-normalise
``(x - 255 mean) / (255 std)``, an odd frame count padded by repeating the last
frame, and patches flattened in the model's block order (t, merge-block row,
merge-block col, in-block row, in-block col), each ``(C, 2, 14, 14)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional

import numpy as np

from ottvid_jax import resize as resize_lib
from ottvid_jax import video as video_lib
from ottvid_jax.models.generate import decode_text
from ottvid_jax.models.qwen2_5_vl.generation import VideoBatch
from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VLConfig

__all__ = ["QwenPixels", "QwenProcessor", "normalize", "patchify", "pixel_values", "preprocess_video",
           "smart_resize"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SYSTEM = "You are a helpful assistant."

FACTOR = 28  # qwen-vl-utils: image_patch_size * SPATIAL_MERGE_SIZE
FRAME_FACTOR = 2  # qwen-vl-utils vision_process.FRAME_FACTOR
MAX_RATIO = 200  # qwen-vl-utils vision_process.MAX_RATIO
VIDEO_FRAME_MIN_PIXELS = 128 * FACTOR * FACTOR  # VIDEO_MIN_TOKEN_NUM * 28 * 28
VIDEO_FRAME_MAX_PIXELS = 768 * FACTOR * FACTOR  # VIDEO_MAX_TOKEN_NUM * 28 * 28
VIDEO_TOTAL_PIXELS = 128000 * FACTOR * FACTOR * 0.9  # fetch_video: MODEL_SEQ_LEN (128000) * 28 * 28 * 0.9


def smart_resize(height: int, width: int, factor: int = FACTOR, min_pixels: Optional[float] = None,
                 max_pixels: Optional[float] = None) -> tuple[int, int]:
  """qwen-vl-utils' ``smart_resize``: multiples of ``factor`` with an area in ``[min_pixels, max_pixels]``.

  Unlike the HF processors' version (:func:`ottvid_jax.video.smart_resize`)
  it refuses only an aspect ratio above 200 (not 200 itself), and its
  scaled-down sides are not floored at ``factor`` (they can reach 0).

  Raises:
    ValueError: for ``max_pixels < min_pixels`` (qwen-vl-utils asserts) or an
      aspect ratio above 200.
  """
  max_pixels = max_pixels if max_pixels is not None else 16384 * factor ** 2  # IMAGE_MAX_TOKEN_NUM
  min_pixels = min_pixels if min_pixels is not None else 4 * factor ** 2  # IMAGE_MIN_TOKEN_NUM
  if max_pixels < min_pixels:
    raise ValueError(f"max_pixels ({max_pixels}) must be at least min_pixels ({min_pixels})")
  if height < 1 or width < 1:
    raise ValueError(f"bad frame size {height}x{width}")
  if max(height, width) / min(height, width) > MAX_RATIO:
    raise ValueError(f"absolute aspect ratio must be smaller than {MAX_RATIO}, "
                     f"got {max(height, width) / min(height, width)}")
  h_bar = max(factor, round(height / factor) * factor)  # round_by_factor: Python's round, half to even
  w_bar = max(factor, round(width / factor) * factor)
  if h_bar * w_bar > max_pixels:
    beta = math.sqrt((height * width) / max_pixels)
    h_bar = math.floor(height / beta / factor) * factor  # floor_by_factor, with no floor at factor
    w_bar = math.floor(width / beta / factor) * factor
  elif h_bar * w_bar < min_pixels:
    beta = math.sqrt(min_pixels / (height * width))
    h_bar = math.ceil(height * beta / factor) * factor
    w_bar = math.ceil(width * beta / factor) * factor
  return h_bar, w_bar


@dataclasses.dataclass(frozen=True)
class QwenPixels:
  """qwen-vl-utils' per-frame pixel bounds for a video (the ``fetch_video`` arguments).

  Attributes:
    min_pixels: the fewest pixels a frame gets (``min_pixels``).
    max_pixels: the most the caller asks for (``max_pixels``); None for the
      limit alone. Never more than the limit (see :meth:`bounds`).
    total_pixels: the budget shared by all decoded frames (``total_pixels``).
    frame_max_pixels: the per-frame ceiling (``VIDEO_FRAME_MAX_PIXELS``).
    factor: sides are multiples of this (patch 14 times merge 2).

  The defaults are qwen-vl-utils' (128 to 768 tokens of 28 x 28 pixels a frame,
  90 % of 128k tokens in all); the authors pass ``min_pixels=200704,
  max_pixels=1605632`` (``scripts/eval_qwen_mvbench.sh``).
  """

  min_pixels: int = VIDEO_FRAME_MIN_PIXELS
  max_pixels: Optional[float] = None
  total_pixels: float = VIDEO_TOTAL_PIXELS
  frame_max_pixels: int = VIDEO_FRAME_MAX_PIXELS
  factor: int = FACTOR

  def limit(self, fetch_count: int) -> float:
    """fetch_video's per-frame limit for ``fetch_count`` decoded frames."""
    if fetch_count < 1:
      raise ValueError(f"fetch_count must be positive, got {fetch_count}")
    # qwen-vl-utils fetch_video: max(min(VIDEO_FRAME_MAX_PIXELS, total_pixels / nframes * FRAME_FACTOR),
    # int(min_pixels * 1.05)), nframes being the frames decoded (before any second stage).
    return max(min(self.frame_max_pixels, self.total_pixels / fetch_count * FRAME_FACTOR), int(self.min_pixels * 1.05))

  def bounds(self, fetch_count: int) -> tuple[float, float]:
    """``(min_pixels, max_pixels)`` smart_resize gets: the asked-for maximum capped at :meth:`limit`."""
    cap = self.limit(fetch_count)
    asked = self.max_pixels if self.max_pixels is not None else cap
    return self.min_pixels, min(asked, cap)

  def size(self, height: int, width: int, fetch_count: int) -> tuple[int, int]:
    """The resized ``(height, width)`` of ``height x width`` frames when ``fetch_count`` are decoded."""
    return smart_resize(height, width, self.factor, *self.bounds(fetch_count))


def patchify(frames: np.ndarray, patch: int = 14, temporal: int = 2, merge: int = 2) -> tuple[np.ndarray, tuple]:
  """Normalised frames ``float[F, C, H, W]`` to ``([P, C * 2 * 14 * 14], (t, h, w))``."""
  if frames.shape[0] % temporal:
    frames = np.concatenate([frames] + [frames[-1:]] * (temporal - frames.shape[0] % temporal))
  f, c, h, w = frames.shape
  gt, gh, gw = f // temporal, h // patch, w // patch
  x = frames.reshape(gt, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
  x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [gt, gh/2, gw/2, mh, mw, C, tp, ph, pw]
  return np.ascontiguousarray(x.reshape(gt * gh * gw, c * temporal * patch * patch)), (gt, gh, gw)


def normalize(frames: np.ndarray, mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
  """``uint8[F, H, W, 3]`` to ``float32[F, 3, H, W]``: ``Qwen2VLVideoProcessor``'s ``(x - 255 mean) / (255 std)``.

  Equal to ``(x / 255 - mean) / std`` up to float32 rounding; this fused form
  is the HF processor's (``rescale_and_normalize``), value for value.
  """
  mean = np.asarray(mean, np.float32)[:, None, None]
  std = np.asarray(std, np.float32)[:, None, None]
  return (frames.transpose(0, 3, 1, 2).astype(np.float32) - 255.0 * mean) / (255.0 * std)


def _check(frames: np.ndarray):
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8[F, H, W, 3], got {frames.dtype}{list(frames.shape)}")


def pixel_values(frames: np.ndarray, pixels: QwenPixels = QwenPixels(), fetch_count: Optional[int] = None,
                 mean=CLIP_MEAN, std=CLIP_STD) -> tuple[np.ndarray, tuple]:
  """Frames as qwen-vl-utils and the HF processor make them: ``(pixel_values_videos [P, 1176], (t, h, w))``.

  Args:
    frames: ``uint8[F, H, W, 3]``.
    pixels: the pixel bounds.
    fetch_count: the frames decoded before any second stage (the per-frame
      cap depends on it); None for ``F``.
    mean, std: the normalisation.
  """
  _check(frames)
  height, width = pixels.size(frames.shape[1], frames.shape[2], fetch_count or frames.shape[0])
  if height < pixels.factor or width < pixels.factor:
    raise ValueError(f"frames of {frames.shape[1]}x{frames.shape[2]} resize to {height}x{width}, "
                     f"less than {pixels.factor} pixels a side")
  return patchify(normalize(resize_lib.resize_bicubic_antialias(frames, height, width), mean, std))


def preprocess_video(frames: np.ndarray, *, min_pixels: int = 128 * 28 * 28, max_pixels: int = 768 * 28 * 28,
                     mean=CLIP_MEAN, std=CLIP_STD) -> tuple[np.ndarray, tuple]:
  """``uint8[F, H, W, 3]`` frames to ``(pixel_values_videos [P, 1176], (t, h, w))`` as ``Qwen2VLVideoProcessor`` alone does.

  The HF processor's own ``smart_resize`` (:func:`ottvid_jax.video.smart_resize`)
  within fixed bounds (the class defaults here: 128 and 768 patches of 28 x 28),
  torchvision's resize and its normalisation; no qwen-vl-utils frame budget
  (that is :func:`pixel_values`).
  """
  _check(frames)
  height, width = video_lib.smart_resize(frames.shape[1], frames.shape[2], 28, min_pixels, max_pixels)
  return patchify(normalize(resize_lib.resize_bicubic_antialias(frames, height, width), mean, std))


@dataclasses.dataclass(frozen=True)
class QwenProcessor:
  """Tokenizer, chat template and video preprocessing of one checkpoint.

  Attributes:
    tokenizer: a ``tokenizers.Tokenizer`` (from the checkpoint's ``tokenizer.json``).
    config: the model config (token ids, merge size).
    pixels: the per-frame pixel bounds (qwen-vl-utils' defaults unless given).
    mean, std: normalisation (from ``preprocessor_config.json`` when present).
  """

  tokenizer: object
  config: Qwen2_5_VLConfig
  pixels: QwenPixels = QwenPixels()
  mean: tuple = CLIP_MEAN
  std: tuple = CLIP_STD

  @property
  def min_pixels(self) -> int:
    return self.pixels.min_pixels

  @property
  def max_pixels(self) -> float:
    """The asked-for per-frame maximum (the per-frame ceiling when none is asked for)."""
    return self.pixels.max_pixels if self.pixels.max_pixels is not None else self.pixels.frame_max_pixels

  @classmethod
  def from_checkpoint(cls, checkpoint_dir: str, config: Qwen2_5_VLConfig,
                      pixels: Optional[QwenPixels] = None) -> "QwenProcessor":
    from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel

    path = os.path.join(checkpoint_dir, "tokenizer.json")
    if not os.path.isfile(path):
      raise ValueError(f"{checkpoint_dir!r} has no tokenizer.json")
    kw = {}
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
      pre = os.path.join(checkpoint_dir, name)
      if os.path.isfile(pre):
        with open(pre, encoding="utf-8") as f:
          data = json.load(f)
        kw = {k: tuple(data[k]) for k in ("image_mean", "image_std") if k in data}
        kw = {"mean": kw.get("image_mean", CLIP_MEAN), "std": kw.get("image_std", CLIP_STD)}
        break
    return cls(Tokenizer.from_file(path), config, pixels or QwenPixels(), **kw)

  def prompt_ids(self, question: str, video_tokens: int) -> list[int]:
    """The chat-template token ids with ``video_tokens`` video placeholders."""
    before = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    after = f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"
    encode = lambda text: self.tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    return encode(before) + [self.config.video_token_id] * video_tokens + encode(after)

  def __call__(self, clip: video_lib.VideoClip, question: str, max_length: Optional[int] = None,
               second_per_grid: Optional[float] = None) -> VideoBatch:
    """One video question as model inputs.

    Args:
      clip: the sampled frames (its ``fetch_count`` sets the per-frame cap,
        its ``sample_fps`` the native time positions).
      question: the prompt text after the video.
      max_length: refuse prompts longer than this.
      second_per_grid: seconds per temporal patch for M-RoPE; None for
        ``temporal_patch_size / clip.sample_fps`` (qwen-vl-utils' and the model
        card's), a number as given (the authors' runs: 1.0).
    """
    pixels, grid = pixel_values(clip.frames, self.pixels, clip.fetch_count, self.mean, self.std)
    merge = self.config.vision.spatial_merge_size
    count = grid[0] * (grid[1] // merge) * (grid[2] // merge)
    ids = self.prompt_ids(question, count)
    if max_length is not None and len(ids) > max_length:
      raise ValueError(f"the prompt needs {len(ids)} tokens, more than the context of {max_length}")
    if second_per_grid is None:
      if not clip.sample_fps > 0:
        raise ValueError(f"no native time positions: the clip's sample_fps is {clip.sample_fps}")
      second_per_grid = self.config.vision.temporal_patch_size / clip.sample_fps
    return VideoBatch(np.asarray([ids], np.int32), np.ones((1, len(ids)), np.int32), pixels, (grid,),
                      (float(second_per_grid),))

  def decode(self, tokens) -> str:
    return decode_text(self.tokenizer, tokens, self.config.eos_token_ids)
