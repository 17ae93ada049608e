"""Qwen2.5-VL inputs: video frames to patches, the prompt to token ids.

The pixel path follows ``Qwen2VLVideoProcessor``: ``smart_resize`` to
multiples of 28 within the pixel bounds, bicubic resize of the uint8 frames,
the fused rescale-and-normalise ``(x - 255 mean) / (255 std)``, an odd frame
count padded by repeating the last frame, and patches flattened in the
model's block order (t, merge-block row, merge-block col, in-block row, in-block
col), each ``(C, 2, 14, 14)``. Without a resize it equals the HF processor
exactly; the resize is Pillow's antialiased bicubic where HF uses
torchvision's, a difference of a few uint8 levels on edges.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import numpy as np

from ottvid_jax import video as video_lib
from ottvid_jax.models.generate import decode_text
from ottvid_jax.models.qwen2_5_vl.generation import VideoBatch
from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VLConfig

__all__ = ["QwenProcessor", "patchify", "preprocess_video"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SYSTEM = "You are a helpful assistant."


def patchify(frames: np.ndarray, patch: int = 14, temporal: int = 2, merge: int = 2) -> tuple[np.ndarray, tuple]:
  """Normalised frames ``float[F, C, H, W]`` to ``([P, C * 2 * 14 * 14], (t, h, w))``."""
  if frames.shape[0] % temporal:
    frames = np.concatenate([frames] + [frames[-1:]] * (temporal - frames.shape[0] % temporal))
  f, c, h, w = frames.shape
  gt, gh, gw = f // temporal, h // patch, w // patch
  x = frames.reshape(gt, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
  x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [gt, gh/2, gw/2, mh, mw, C, tp, ph, pw]
  return np.ascontiguousarray(x.reshape(gt * gh * gw, c * temporal * patch * patch)), (gt, gh, gw)


def preprocess_video(frames: np.ndarray, *, min_pixels: int = 128 * 28 * 28, max_pixels: int = 768 * 28 * 28,
                     mean=CLIP_MEAN, std=CLIP_STD) -> tuple[np.ndarray, tuple]:
  """``uint8[F, H, W, 3]`` frames to ``(pixel_values_videos [P, 1176], (t, h, w))``.

  The default bounds are the processor class's (128 and 768 patches of 28 x 28
  per frame); state them explicitly in experiments.
  """
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8[F, H, W, 3], got {frames.dtype}{list(frames.shape)}")
  height, width = video_lib.smart_resize(frames.shape[1], frames.shape[2], 28, min_pixels, max_pixels)
  frames = video_lib.resize_frames(frames, height, width)
  mean = np.asarray(mean, np.float32)[:, None, None]
  std = np.asarray(std, np.float32)[:, None, None]
  x = (frames.transpose(0, 3, 1, 2).astype(np.float32) - 255.0 * mean) / (255.0 * std)
  return patchify(x)


@dataclasses.dataclass(frozen=True)
class QwenProcessor:
  """Tokenizer, chat template and video preprocessing of one checkpoint.

  Attributes:
    tokenizer: a ``tokenizers.Tokenizer`` (from the checkpoint's ``tokenizer.json``).
    config: the model config (token ids, merge size).
    min_pixels, max_pixels: per-frame pixel bounds.
    mean, std: normalisation (from ``preprocessor_config.json`` when present).
  """

  tokenizer: object
  config: Qwen2_5_VLConfig
  min_pixels: int = 128 * 28 * 28
  max_pixels: int = 768 * 28 * 28
  mean: tuple = CLIP_MEAN
  std: tuple = CLIP_STD

  @classmethod
  def from_checkpoint(cls, checkpoint_dir: str, config: Qwen2_5_VLConfig, **bounds) -> "QwenProcessor":
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
    return cls(Tokenizer.from_file(path), config, **kw, **bounds)

  def prompt_ids(self, question: str, video_tokens: int) -> list[int]:
    """The chat-template token ids with ``video_tokens`` video placeholders."""
    before = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    after = f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"
    encode = lambda text: self.tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    return encode(before) + [self.config.video_token_id] * video_tokens + encode(after)

  def __call__(self, clip: video_lib.VideoClip, question: str, max_length: Optional[int] = None) -> VideoBatch:
    """One video question as model inputs."""
    pixels, grid = preprocess_video(clip.frames, min_pixels=self.min_pixels, max_pixels=self.max_pixels,
                                    mean=self.mean, std=self.std)
    merge = self.config.vision.spatial_merge_size
    count = grid[0] * (grid[1] // merge) * (grid[2] // merge)
    ids = self.prompt_ids(question, count)
    if max_length is not None and len(ids) > max_length:
      raise ValueError(f"the prompt needs {len(ids)} tokens, more than the context of {max_length}")
    seconds = self.config.vision.temporal_patch_size / clip.sampled_fps
    return VideoBatch(np.asarray([ids], np.int32), np.ones((1, len(ids)), np.int32), pixels, (grid,), (seconds,))

  def decode(self, tokens) -> str:
    return decode_text(self.tokenizer, tokens, self.config.eos_token_ids)
