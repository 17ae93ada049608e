"""One question's model inputs, the single path ``ottvid answer``, ``ottvid demo --checkpoint`` and the eval share.

A video (file or frame folder, optionally a ``[start, end]`` window) is
sampled by the protocol's :class:`~ottvid_jax.sampling.FrameRule`, turned into
pixels by the backbone's processor (Qwen2.5-VL with the protocol's
:class:`~ottvid_jax.models.qwen2_5_vl.processing.QwenPixels` and time
positions; LLaVA with SigLIP's preprocessing), and the prompt text is placed
in the backbone's chat template as the reference wrapper does.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

from ottvid_jax import video as video_lib
from ottvid_jax.sampling import Sampling

__all__ = ["Prepared", "backbone_name", "checkpoint_backbone", "prepare"]


def checkpoint_backbone(checkpoint_dir: str) -> str:
  """The lmms-eval model name of a checkpoint folder, from its ``config.json`` alone (no weights read).

  Raises:
    CheckpointError: no readable ``config.json`` or an unsupported architecture.
  """
  from ottvid_jax.models import registry  # pylint: disable=import-outside-toplevel

  return registry.for_checkpoint(checkpoint_dir).name


def backbone_name(model) -> str:
  """The lmms-eval model name of a loaded backbone: ``qwen2_5_vl``, ``llava_onevision`` or ``llava_vid``."""
  from ottvid_jax.models import registry  # pylint: disable=import-outside-toplevel

  return registry.of(model).name


@dataclasses.dataclass(frozen=True)
class Prepared:
  """A question's inputs and what produced them.

  Attributes:
    batch: the processor's output (``VideoBatch`` or ``LlavaBatch``).
    clip: the sampled frames and their provenance.
    text: the text placed after the video in the chat template.
  """

  batch: Any
  clip: video_lib.VideoClip
  text: str

  def describe(self) -> dict:
    """What a results record keeps of the inputs: frames, pixels, positions, prompt."""
    clip, batch = self.clip, self.batch
    out = {"frames": [int(i) for i in clip.indices], "total_frames": int(clip.total_frames),
           "video_fps": float(clip.fps), "sample_fps": clip.sample_fps, "fetch_count": clip.fetch_count,
           "prompt": self.text}
    if hasattr(batch, "video_grid_thw"):  # Qwen2.5-VL
      out.update(grid_thw=[[int(v) for v in g] for g in batch.video_grid_thw],
                 second_per_grid=[float(s) for s in batch.second_per_grid_ts])
    else:
      out["pixels_shape"] = list(batch.pixel_values_videos.shape)
    if clip.warnings:
      out["warnings"] = list(clip.warnings)
    return out


def _time_instruction(clip: video_lib.VideoClip, text: str) -> str:
  # llava_vid.py generate_until (add_time_instruction): the clip's length, frame count and frame times
  # ("...located at {frame_time}.Please answer", without a space, as released).
  duration = clip.total_frames / clip.fps if clip.fps > 0 else 0.0
  times = ",".join(f"{t:.2f}s" for t in clip.times)
  return (f"The video lasts for {duration:.2f} seconds, and {len(clip.indices)} frames are uniformly sampled from "
          f"it. These frames are located at {times}.Please answer the following questions related to this video.\n"
          f"{text}")


def prepare(model, processor, inputs, source: str, text: str, *, window: Optional[tuple] = None,
            frame_rate: Optional[float] = None, max_length: Optional[int] = None) -> Prepared:
  """Samples ``source`` and builds the backbone's inputs for ``text``.

  Args:
    model: the loaded backbone (picks the processor's conventions).
    processor: its ``QwenProcessor`` or ``LlavaProcessor``.
    inputs: the protocol's :class:`~ottvid_jax.eval.protocol.BackboneInputs` for this backbone.
    source: a video file or a folder of frames.
    text: the question as the model is asked it.
    window: ``(start, end)`` seconds to sample within.
    frame_rate: a frame folder's frames per second.
    max_length: refuse prompts longer than this many tokens.

  Raises:
    ValueError: unreadable video, a rule's reference error, or a prompt over ``max_length``.
  """
  rule = inputs.frames
  if rule.sampling is Sampling.LLAVA_VID and os.path.isdir(source):
    rule = dataclasses.replace(rule, force_sample=True)  # llava_vid.py: frame folders always sample uniformly
  clip = video_lib.load_clip(source, rule, window=window, frame_rate=frame_rate)
  kind = backbone_name(model)
  if kind == "qwen2_5_vl":
    text = text.replace("<image>", "")  # the Qwen wrappers drop image markers from the context
    if inputs.pixels is not None:
      processor = dataclasses.replace(processor, pixels=inputs.pixels)
    batch = processor(clip, text, max_length=max_length, second_per_grid=inputs.second_per_grid)
  else:
    if inputs.time_instruction:
      text = _time_instruction(clip, text)
    batch = processor(clip, text, max_length=max_length)
  return Prepared(batch, clip, text)
