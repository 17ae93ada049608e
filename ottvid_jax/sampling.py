"""Which frames of a video a backbone sees: the reference sampling rules as pure functions.

Every rule maps ``(total_frames, video_fps, window)`` to frame numbers in the
file, exactly as its reference computes them:

=================  ==========================================================================================
rule               reference
=================  ==========================================================================================
``QWEN_NFRAMES``   the authors' ``lmms_eval_wrappers/qwen2_5_vl.py`` (stage 1): an even count
                   ``max(2, (min(frames, total) // 2) * 2)`` handed to qwen-vl-utils as ``nframes``, indices
                   ``torch.linspace(start, end, n).round().long()`` (float32, both ends included)
``QWEN_FPS``       qwen-vl-utils 0.0.14 ``smart_nframes`` with ``fps`` (4 to ``min(768, total)`` frames, an
                   even count) and the same torch linspace; optionally a second stage down to ``subsample``
                   frames (the authors' ``stage2_subsample``, or stock lmms-eval 0.7.3's ``qwen2_5_vl.py``)
``LINSPACE_INT``   ``np.linspace(start, end, frames, dtype=int)`` (LLaVA-OneVision's ``load_video`` in the
                   authors' wrapper and in lmms-eval: truncation, not rounding)
``LLAVA_VID``      the authors' ``llava_vid.py`` ``load_video``: every ``round(video_fps / fps)``-th frame,
                   uniform ``np.linspace(dtype=int)`` of ``frames`` when that gives more (or ``force_sample``)
=================  ==========================================================================================

A ``window`` ``(start, end)`` in seconds (either may be None) is mapped to a
frame range as qwen-vl-utils' ``calculate_video_frame_range`` does (start
rounded up, end rounded down, both clamped to the video, a range of fewer than
two frames refused) for every rule; without a window the range is the whole
video. The LLaVA references take no window: for them the rule runs on that
range as it would on a whole video.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Optional

import numpy as np

__all__ = [
    "FrameRule",
    "SampledFrames",
    "Sampling",
    "frame_indices",
    "frame_range",
    "stage2_positions",
    "torch_linspace",
]

FRAME_FACTOR = 2  # qwen-vl-utils vision_process.FRAME_FACTOR
FPS_MIN_FRAMES = 4  # qwen-vl-utils vision_process.FPS_MIN_FRAMES
FPS_MAX_FRAMES = 768  # qwen-vl-utils vision_process.FPS_MAX_FRAMES


class Sampling(enum.Enum):
  """The frame-index rules (see the module docstring)."""

  QWEN_NFRAMES = "qwen_nframes"
  QWEN_FPS = "qwen_fps"
  LINSPACE_INT = "linspace_int"
  LLAVA_VID = "llava_vid"


@dataclasses.dataclass(frozen=True)
class FrameRule:
  """A sampling rule and its settings.

  Attributes:
    sampling: the rule.
    frames: ``QWEN_NFRAMES``: the most frames (the wrapper's ``max_num_frames``);
      ``LINSPACE_INT``: the frame count; ``LLAVA_VID``: ``max_frames_num``.
      Unused by ``QWEN_FPS`` (see ``subsample``).
    fps: ``QWEN_FPS``: frames per second of video time (qwen-vl-utils' default
      2.0); ``LLAVA_VID``: the wrapper's ``video_fps`` (1).
    min_frames: ``QWEN_FPS``: the fewest frames (qwen-vl-utils' ``min_frames``).
    max_frames: ``QWEN_FPS``: the most frames; None is qwen-vl-utils' default
      ``min(768, frames in the range)``.
    subsample: ``QWEN_FPS``: a second stage down to this many frames
      (``np.linspace(0, n - 1, subsample, dtype=int)``, duplicates dropped, the
      last frame kept); None for none.
    subsample_always: apply the second stage whatever the first stage's count
      (stock lmms-eval 0.7.3) rather than only when it exceeds ``subsample``
      (the authors' ``stage2_subsample``). The two agree on every count: on
      ``n <= subsample`` frames the always-applied stage keeps all of them.
    force_sample: ``LLAVA_VID``: always sample ``frames`` uniformly.
  """

  sampling: Sampling
  frames: Optional[int] = None
  fps: Optional[float] = None
  min_frames: int = FPS_MIN_FRAMES
  max_frames: Optional[int] = None
  subsample: Optional[int] = None
  subsample_always: bool = False
  force_sample: bool = False

  def __post_init__(self):
    if not isinstance(self.sampling, Sampling):
      raise ValueError(f"sampling must be a Sampling, got {self.sampling!r}")
    if self.sampling is Sampling.QWEN_FPS:
      if self.fps is None:
        object.__setattr__(self, "fps", 2.0)  # qwen-vl-utils vision_process.FPS
      if self.subsample is not None and self.subsample < 1:
        raise ValueError(f"subsample must be positive, got {self.subsample}")
    else:
      if self.frames is None or self.frames < 1:
        raise ValueError(f"{self.sampling.name} needs a positive frame count, got frames={self.frames}")
      if self.subsample is not None:
        raise ValueError(f"only QWEN_FPS has a second stage, not {self.sampling.name}")
    if self.sampling is Sampling.LLAVA_VID and self.fps is None:
      object.__setattr__(self, "fps", 1.0)  # llava_vid.py: video_fps = 1
    if self.fps is not None and not self.fps > 0:
      raise ValueError(f"fps must be positive, got {self.fps}")

  def describe(self) -> str:
    """One line naming the rule and its settings."""
    s = self.sampling
    if s is Sampling.QWEN_NFRAMES:
      return f"qwen-vl-utils nframes, at most {self.frames} (even), rounded float32 linspace"
    if s is Sampling.QWEN_FPS:
      top = self.max_frames if self.max_frames is not None else f"min({FPS_MAX_FRAMES}, total)"
      text = f"qwen-vl-utils {self.fps:g} fps, {self.min_frames} to {top} frames (even)"
      if self.subsample is not None:
        text += f", then {self.subsample} by truncated linspace ({'always' if self.subsample_always else 'if more'})"
      return text
    if s is Sampling.LINSPACE_INT:
      return f"{self.frames} frames by truncated linspace"
    extra = ", forced uniform" if self.force_sample else ""
    return f"LLaVA-Video {self.fps:g} fps, uniform {self.frames} when more{extra}"


@dataclasses.dataclass(frozen=True)
class SampledFrames:
  """The frames a rule picks.

  Attributes:
    indices: ``int64[T]`` frame numbers in the file (in order; may repeat where
      the reference repeats them).
    fetch_count: how many frames the reference decodes before any second stage
      (qwen-vl-utils' per-frame pixel cap divides its budget by this count).
    sample_fps: qwen-vl-utils' ``sample_fps``: ``fetch_count / frames in the
      range * video_fps`` (for every rule, with its own count).
    start_frame, end_frame: the frame range sampled (both included).
    fetched: ``int64[fetch_count]`` the first stage's frame numbers (equal to
      ``indices`` without a second stage).
    times: seconds of each sampled frame as the reference states them
      (``LLAVA_VID``: as ``llava_vid.py`` writes its ``frame_time``; others:
      ``index / video_fps``).
    warnings: what the rule had to adjust (more frames asked for than the range
      has, and so on), one sentence each.
  """

  indices: np.ndarray
  fetch_count: int
  sample_fps: float
  start_frame: int
  end_frame: int
  fetched: np.ndarray
  times: tuple[float, ...] = ()
  warnings: tuple[str, ...] = ()


def torch_linspace(start: float, end: float, steps: int, fused: bool = True) -> np.ndarray:
  """``torch.linspace(start, end, steps)`` (float32, on the CPU), value for value.

  PyTorch's CPU kernel (``aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp``,
  ``linspace_kernel``) computes ``step = (end - start) / (steps - 1)`` in
  float32, then ``start + step * i`` for the first ``steps // 2`` values and
  ``end - step * (steps - 1 - i)`` for the rest. Its AVX2 and AVX-512 builds
  (what a GPU server's CPU runs) contract each product and sum into one fused
  multiply-add (one rounding), which ``fused=True`` reproduces exactly;
  ``fused=False`` rounds twice, as its baseline build
  (``ATEN_CPU_CAPABILITY=default``) does. On long videos the two, and
  float64's ``np.linspace``, round to different frames.

  Returns:
    ``float32[steps]``.
  """
  if steps < 0:
    raise ValueError(f"number of steps must be non-negative, got {steps}")
  s32, e32 = np.float32(start), np.float32(end)
  if steps <= 1:
    return np.full(steps, s32, np.float32)
  step = np.float32((e32 - s32) / np.float32(steps - 1))
  half = steps // 2
  i = np.arange(steps, dtype=np.int64)
  base = np.where(i < half, s32, e32).astype(np.float32)
  count = np.where(i < half, i, -(steps - 1 - i))  # base + step * count, signed
  if not fused:
    return (base + (step * count.astype(np.float32))).astype(np.float32)
  return _fma_f32(base, step, count)


def _fma_f32(base: np.ndarray, step: np.float32, count: np.ndarray) -> np.ndarray:
  """``float32(base + step * count)`` rounded once (the exact value correctly rounded)."""
  product = np.float64(step) * count.astype(np.float64)  # exact: 24-bit step times a small integer
  b = base.astype(np.float64)
  total = b + product
  # TwoSum: total + error is exactly base + product.
  virtual = total - b
  error = (b - (total - virtual)) + (product - virtual)
  rounded = total.astype(np.float32)
  wide = rounded.astype(np.float64)
  other = np.where(wide < total, np.nextafter(rounded, np.float32(np.inf)),
                   np.nextafter(rounded, np.float32(-np.inf))).astype(np.float32)
  midpoint = (wide + other.astype(np.float64)) / 2.0
  # Rounding the double to float32 rounds twice only where the double sits exactly on a float32 midpoint: the
  # remaining error then decides the side.
  tie = (wide != total) & (total == midpoint) & (error != 0)
  side = np.where(error > 0, np.maximum(rounded, other), np.minimum(rounded, other))
  return np.where(tie, side, rounded).astype(np.float32)


def _torch_round_long(values: np.ndarray) -> np.ndarray:
  """``tensor.round().long()``: half to even in float32, then int64."""
  return np.rint(values).astype(np.int64)


def frame_range(total_frames: int, video_fps: float, window: Optional[tuple] = None) -> tuple[int, int, int]:
  """``(start_frame, end_frame, count)`` of a window in seconds, as qwen-vl-utils maps it.

  Follows qwen-vl-utils ``calculate_video_frame_range``: the start is rounded
  up and the end down to frame numbers, both clamped to ``[0, total / fps]``
  seconds (the end also to the last frame).

  Raises:
    ValueError: for a non-positive fps or frame count, or a window holding
      fewer than two frames (qwen-vl-utils' "Invalid time range").
  """
  if not video_fps > 0:  # calculate_video_frame_range: video_fps must be a positive number
    raise ValueError("video_fps must be a positive number")
  if total_frames <= 0:
    raise ValueError("total_frames must be a positive integer")
  start, end = (None, None) if window is None else window
  if start is None and end is None:
    return 0, total_frames - 1, total_frames
  max_duration = total_frames / video_fps
  start_frame = math.ceil(max(0.0, min(start, max_duration)) * video_fps) if start is not None else 0
  if end is not None:
    end_frame = min(math.floor(max(0.0, min(end, max_duration)) * video_fps), total_frames - 1)
  else:
    end_frame = total_frames - 1
  if start_frame >= end_frame:  # calculate_video_frame_range refuses an empty or one-frame range
    raise ValueError(f"Invalid time range: start frame {start_frame} (at {start}s) is not before end frame "
                     f"{end_frame} (at {end}s); video of {max_duration:.2f}s ({total_frames} frames @ {video_fps}fps)")
  return start_frame, end_frame, end_frame - start_frame + 1


def _floor_even(x: float) -> int:
  return math.floor(x / FRAME_FACTOR) * FRAME_FACTOR


def _qwen_count(n: int, total: int) -> int:
  """qwen-vl-utils ``smart_nframes({"nframes": n})``: rounded to even, within ``[2, total]``."""
  count = round(n / FRAME_FACTOR) * FRAME_FACTOR  # round_by_factor: Python's round, half to even
  if not FRAME_FACTOR <= count <= total:
    raise ValueError(f"nframes should in interval [{FRAME_FACTOR}, {total}], but got {count}.")
  return count


def _qwen_fps_count(rule: FrameRule, total: int, video_fps: float, notes: list) -> int:
  """qwen-vl-utils ``smart_nframes({"fps": ...})``."""
  min_frames = math.ceil(rule.min_frames / FRAME_FACTOR) * FRAME_FACTOR
  max_frames = _floor_even(rule.max_frames if rule.max_frames is not None else min(FPS_MAX_FRAMES, total))
  wanted = total / video_fps * rule.fps
  count = _floor_even(min(min(max(wanted, min_frames), max_frames), total))
  if max(wanted, min_frames) > total:  # smart_nframes logs "nframes > total_frames" and caps the count
    notes.append(f"{max(wanted, min_frames):g} frames asked for ({rule.fps:g} fps, at least {min_frames}), "
                 f"the range has {total}: {count} taken")
  if not FRAME_FACTOR <= count <= total:
    raise ValueError(f"nframes should in interval [{FRAME_FACTOR}, {total}], but got {count}.")
  return count


def stage2_positions(count: int, target: int, always: bool = False) -> np.ndarray:
  """Positions kept by the second stage among ``count`` decoded frames.

  The authors' ``stage2_subsample`` (``lmms_eval_wrappers/qwen2_5_vl.py``)
  applies it only when ``count > target``; stock lmms-eval 0.7.3
  (``models/simple/qwen2_5_vl.py``) always: ``np.linspace(0, count - 1, target,
  dtype=int)``, duplicates dropped, the last position appended if missing.
  """
  if not always and count <= target:
    return np.arange(count, dtype=np.int64)
  positions = np.unique(np.linspace(0, count - 1, target, dtype=int))
  if count - 1 not in positions:
    positions = np.unique(np.append(positions, count - 1))
  return positions.astype(np.int64)


def frame_indices(rule: FrameRule, total_frames: int, video_fps: float,
                  window: Optional[tuple] = None) -> SampledFrames:
  """The frames ``rule`` samples from a video of ``total_frames`` at ``video_fps``.

  Args:
    rule: the rule.
    total_frames: frames in the video (decord's ``len(VideoReader)``).
    video_fps: its average frame rate (decord's ``get_avg_fps()``).
    window: ``(start, end)`` seconds to sample within (either may be None), or
      None for the whole video.

  Returns:
    A :class:`SampledFrames`.

  Raises:
    ValueError: where the reference raises (qwen-vl-utils' frame-count and
      time-range checks, a zero ``LLAVA_VID`` step).
  """
  start, end, count = frame_range(total_frames, video_fps, window)
  notes: list[str] = []
  s = rule.sampling
  times = None
  if s in (Sampling.QWEN_NFRAMES, Sampling.QWEN_FPS):
    if s is Sampling.QWEN_NFRAMES:
      # The wrapper's count is taken from the frames in the range (it passes no window: the whole video).
      n = max(2, (min(rule.frames, count) // 2) * 2)
      if rule.frames > count:
        notes.append(f"{rule.frames} frames asked for, the range has {count}: {n} taken (even)")
      n = _qwen_count(n, count)
    else:
      n = _qwen_fps_count(rule, count, video_fps, notes)
    fetched = _torch_round_long(torch_linspace(start, end, n))
    indices = fetched
    if rule.subsample is not None:
      if n < rule.subsample:
        notes.append(f"second stage of {rule.subsample} frames on {n} decoded: all {n} kept")
      indices = fetched[stage2_positions(n, rule.subsample, rule.subsample_always)]
  elif s is Sampling.LINSPACE_INT:
    fetched = indices = _linspace_int(start, end, rule.frames, count, notes)
  else:
    step = round(video_fps / rule.fps)  # llava_vid.py load_video: fps = round(vr.get_avg_fps() / fps)
    if step < 1:
      raise ValueError(f"a {video_fps:g} fps video sampled at {rule.fps:g} fps gives a step of {step} frames "
                       "(llava_vid.py's range() refuses it)")
    every = np.arange(start, end + 1, step, dtype=np.int64)
    if len(every) > rule.frames or rule.force_sample:
      fetched = indices = _linspace_int(start, end, rule.frames, count, notes)
      times = tuple(float(i) / video_fps for i in indices)  # llava_vid.py: i / vr.get_avg_fps()
    else:
      fetched = indices = every
      times = tuple(float(i) / step for i in indices)  # llava_vid.py: i / fps, fps being the step by then
  if times is None:
    times = tuple(float(i) / video_fps for i in indices)
  sample_fps = len(fetched) / max(count, 1e-6) * video_fps  # qwen-vl-utils _read_video_decord: sample_fps
  return SampledFrames(np.asarray(indices, np.int64), int(len(fetched)), float(sample_fps), int(start), int(end),
                       np.asarray(fetched, np.int64), times, tuple(notes))


def _linspace_int(start: int, end: int, n: int, count: int, notes: list) -> np.ndarray:
  if n > count:  # np.linspace(dtype=int) then repeats frames, as the references do
    notes.append(f"{n} frames asked for, the range has {count}: frames repeat")
  return np.linspace(start, end, n, dtype=int).astype(np.int64)
