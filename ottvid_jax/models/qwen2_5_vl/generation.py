"""Answers from Qwen2.5-VL: prefill (optionally OTT-Vid-compressed) and decoding."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor.interface import CompressionMethod
from ottvid_jax.models.generate import GenerationResult, SamplingConfig, generator_for, run
from ottvid_jax.models.qwen2_5_vl import vision
from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VL, rope_index, static_grid
from ottvid_jax.models.sequence import plan_sequence

__all__ = ["HEAD_BLOCKS", "VideoBatch", "generate", "llm_input", "prepare_prefill", "video_features"]


@dataclasses.dataclass(frozen=True)
class VideoBatch:
  """Host-side model inputs, the fields of the HF processor's output.

  Attributes:
    input_ids: ``int[B, S]`` with one run of video placeholders per video.
    attention_mask: ``[B, S]``, 0 for padding.
    pixel_values_videos: ``float[P, 1176]`` patches of every video.
    video_grid_thw: per video ``(t, h, w)`` in patches.
    second_per_grid_ts: per video, seconds per temporal grid.
  """

  input_ids: np.ndarray
  attention_mask: np.ndarray
  pixel_values_videos: np.ndarray
  video_grid_thw: tuple
  second_per_grid_ts: tuple

  @classmethod
  def from_processor(cls, out: dict) -> "VideoBatch":
    """From a ``transformers`` processor output (tensors or arrays)."""
    as_np = lambda x: np.asarray(x.numpy() if hasattr(x, "numpy") else x)  # noqa: E731
    ids = as_np(out["input_ids"])
    grid = static_grid(as_np(out["video_grid_thw"]))
    seconds = out.get("second_per_grid_ts")
    seconds = tuple(float(v) for v in as_np(seconds).reshape(-1)) if seconds is not None else (1.0,) * len(grid)
    mask = as_np(out["attention_mask"]) if out.get("attention_mask") is not None else np.ones_like(ids)
    return cls(ids, mask, as_np(out["pixel_values_videos"]).astype(np.float32), grid, seconds)


# The tower runs as two programs: the patch embedding and the first blocks, then the rest. The host's dispatch
# of a program grows with its parameter arrays (326 for the 7B tower: about 0.5 ms on a GPU machine's host before
# its first kernel); a short first program starts the GPU sooner and covers the dispatch of the second. The last
# block (the saliency's) always runs in the second.
HEAD_BLOCKS = 2


def _head_blocks(config: vision.VisionConfig) -> int:
  return min(HEAD_BLOCKS, config.depth - 1)


def _head_part(model: Qwen2_5_VL):
  return model.visual.patch_embed, model.visual.blocks[:_head_blocks(model.config.vision)]


def _rest_part(model: Qwen2_5_VL):
  return model.visual.blocks[_head_blocks(model.config.vision):], model.visual.merger


def _tower_head(parts, pixels, grid, config: vision.VisionConfig, kernels: str):
  patch_embed, blocks = parts
  layout = vision.layout_of(config, grid)
  x = vision.embed_patches(patch_embed, pixels.astype(patch_embed.proj.kernel.dtype), config, layout)
  return vision.run_blocks(blocks, 0, x, None, config, layout, saliency=False, kernels=kernels)[:2]


def _tower_rest(parts, x, pending, grid, config: vision.VisionConfig, kernels: str, saliency: bool):
  blocks, merger = parts
  layout = vision.layout_of(config, grid)
  x, pending, received = vision.run_blocks(blocks, _head_blocks(config), x, pending, config, layout, saliency=saliency,
                                           kernels=kernels)
  return vision.merge_units(merger, x, pending, received, config, layout, kernels)


def video_features(model: Qwen2_5_VL, pixels: jax.Array, grid, saliency: bool):
  """``model.visual(pixels, grid, saliency=saliency)`` queued as two programs (:data:`HEAD_BLOCKS`)."""
  generator, config, kernels = generator_for(model), model.config.vision, model.visual.kernels
  statics = ("grid", "config", "kernels")
  x, pending = generator.builder(_tower_head, statics, part=_head_part)(pixels, grid=grid, config=config,
                                                                         kernels=kernels)
  return generator.builder(_tower_rest, statics + ("saliency",), part=_rest_part)(
      x, pending, grid=grid, config=config, kernels=kernels, saliency=saliency)


def _assemble(model: Qwen2_5_VL, video, saliency, input_ids, position_ids, text_source, video_source, run_start,
              compression, grid):
  return model.assemble_inputs(input_ids, position_ids, video, saliency, grid, text_source, video_source, run_start,
                               compression)


def prepare_prefill(model: Qwen2_5_VL, batch: VideoBatch, compression: Optional[CompressionMethod] = None):
  """Host work before the prefill: positions and the sequence plan, sent to the device.

  Returns:
    ``(args, plan)``: ``args`` are ``(input_ids, positions, text_source,
    video_source, run_start, compression)`` for :meth:`Qwen2_5_VL.assemble_inputs`,
    ``plan`` the :func:`plan_sequence` result.
  """
  config = model.config
  grid = static_grid(batch.video_grid_thw)
  merge = config.vision.spatial_merge_size
  tokens = [t * (h // merge) * (w // merge) for t, h, w in grid]
  is_video = np.asarray(batch.input_ids) == config.video_token_id
  positions, _ = rope_index(batch.input_ids, grid, batch.second_per_grid_ts, batch.attention_mask, config)
  plan = plan_sequence(is_video, batch.attention_mask, model.video_slots(grid, compression), tokens)
  ids, positions, text, video, run_start = jax.device_put(
      (np.asarray(batch.input_ids, np.int32), positions, plan.text, plan.video, plan.run_start))  # one transfer call
  return (ids, positions, text, video, run_start, compression), plan


def llm_input(model: Qwen2_5_VL, batch: VideoBatch, compression: Optional[CompressionMethod] = None):
  """What the LLM's prefill sees: ``((embeds, positions, mask), plan)``.

  Two programs: the vision tower is queued first, as it needs only the pixels,
  so the GPU runs it while the host computes the positions and the sequence
  plan (about 2 ms on a GPU machine's host); then OTT-Vid and the assembly.
  Pixels travel in their own dtype and are cast on the device (a host-side
  bf16 cast of 16384 x 1176 floats costs tens of milliseconds).
  """
  grid = static_grid(batch.video_grid_thw)
  pixels = batch.pixel_values_videos
  video, saliency = video_features(model, pixels if isinstance(pixels, jax.Array) else jnp.asarray(pixels), grid,
                                   saliency=compression is not None)
  args, plan = prepare_prefill(model, batch, compression)
  return generator_for(model).builder(_assemble, ("grid",))(video, saliency, *args, grid=grid), plan


def generate(
    model: Qwen2_5_VL,
    batch: VideoBatch,
    sampling: SamplingConfig = SamplingConfig(),
    compression=None,
    eos_token_ids: Optional[Sequence[int]] = None,
    progress: Optional[object] = None,
) -> GenerationResult:
  """Answers: vision tower, OTT-Vid (when ``compression`` is given), LLM decoding.

  With ``compression``, each video's tokens are compressed between the merger
  and the LLM; survivors keep their original (t, h, w) position ids, text
  keeps its uncompressed positions and padding slots are masked out.
  """
  return run(model, batch, llm_input, sampling, compression, eos_token_ids, progress)
