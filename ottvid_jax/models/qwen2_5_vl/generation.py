"""Answers from Qwen2.5-VL: prefill (optionally OTT-Vid-compressed) and decoding."""

from __future__ import annotations

import dataclasses
import functools
import time
import weakref
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ottvid_jax import compressor
from ottvid_jax.models.generate import Generator, SamplingConfig
from ottvid_jax.models.qwen2_5_vl.model import Qwen2_5_VL, rope_index, static_grid
from ottvid_jax.models.sequence import plan_sequence

__all__ = ["GenerationResult", "VideoBatch", "generate", "prepare_prefill"]


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


@dataclasses.dataclass(frozen=True)
class GenerationResult:
  """Generated tokens and what reached the LLM.

  Attributes:
    tokens: ``int32[B, n]`` new tokens (EOS repeated after a row ends).
    visual_tokens: video tokens that reached the LLM (valid slots), per row.
    input_visual_tokens: video tokens before compression, per row.
    llm_length: the LLM's prefill length S' (padding included).
    timings: seconds: ``first_token_s`` (host preparation, vision tower,
      compression and LLM prefill up to the first token), ``prefill_s``
      (the LLM prefill alone, as seen from the host), ``decode_s``,
      ``total_s``, and ``new_tokens``.
  """

  tokens: np.ndarray
  visual_tokens: np.ndarray
  input_visual_tokens: np.ndarray
  llm_length: int
  timings: dict


def _prefill_inputs(graphdef, state, input_ids, position_ids, pixels, text_source, video_source, run_start,
                    compression, grid):
  model = nnx.merge(graphdef, state)
  pixels = pixels.astype(model.language_model.embed_tokens.embedding.dtype)
  return model.prefill_inputs(input_ids, position_ids, pixels, grid, text_source, video_source, run_start,
                              compression)


_GENERATORS: "weakref.WeakKeyDictionary[Qwen2_5_VL, tuple[Generator, Any]]" = weakref.WeakKeyDictionary()


def _compiled(model: Qwen2_5_VL):
  """The model's Generator and jitted prefill-input builder (made once per model)."""
  if model not in _GENERATORS:
    generator = Generator(model)
    build = jax.jit(functools.partial(_prefill_inputs, generator.graphdef), static_argnames="grid")
    _GENERATORS[model] = (generator, build)
  return _GENERATORS[model]


def prepare_prefill(model: Qwen2_5_VL, batch: VideoBatch, compression: Optional[compressor.OTTVidConfig] = None):
  """Host work before the prefill: positions and the sequence plan.

  Returns:
    ``(jitted builder args, plan)`` where the builder maps them to the LLM
    input ``(embeds, positions, mask)``.
  """
  config = model.config
  grid = static_grid(batch.video_grid_thw)
  merge = config.vision.spatial_merge_size
  tokens = [t * (h // merge) * (w // merge) for t, h, w in grid]
  is_video = np.asarray(batch.input_ids) == config.video_token_id
  positions, _ = rope_index(batch.input_ids, grid, batch.second_per_grid_ts, batch.attention_mask, config)
  plan = plan_sequence(is_video, batch.attention_mask, model.video_slots(grid, compression), tokens)
  # Pixels travel in their own dtype and are cast on the device (a host-side bf16
  # cast of 16384 x 1176 floats costs tens of milliseconds).
  args = (jnp.asarray(batch.input_ids, jnp.int32), jnp.asarray(positions), jnp.asarray(batch.pixel_values_videos),
          jnp.asarray(plan.text), jnp.asarray(plan.video), jnp.asarray(plan.run_start), compression)
  return args, grid, plan


def generate(
    model: Qwen2_5_VL,
    batch: VideoBatch,
    sampling: SamplingConfig = SamplingConfig(),
    compression: Optional[compressor.OTTVidConfig] = None,
    eos_token_ids: Optional[Sequence[int]] = None,
    progress: Optional[object] = None,
) -> GenerationResult:
  """Answers: vision tower, OTT-Vid (when ``compression`` is given), LLM decoding.

  With ``compression``, each video's tokens are compressed between the merger
  and the LLM; survivors keep their original (t, h, w) position ids, text
  keeps its uncompressed positions and padding slots are masked out.
  """
  generator, build = _compiled(model)
  start = time.perf_counter()
  args, grid, plan = prepare_prefill(model, batch, compression)
  embeds, positions, mask = build(generator.state, *args, grid=grid)
  # OTT-Vid's survivors always fill their slots, so the only padding is a batch's left padding.
  dense = bool(((plan.text >= 0) | (plan.video >= 0)).all())
  tokens, timings = generator.generate(embeds, positions, mask, sampling,
                                       model.config.eos_token_ids if eos_token_ids is None else eos_token_ids,
                                       progress, dense)
  timings["first_token_s"] = timings.pop("first_token_at") - start  # host prep + vision + OTT-Vid + LLM prefill
  timings["total_s"] = time.perf_counter() - start
  mask_np = np.asarray(mask)
  video_slot = plan.video >= 0
  visual = (mask_np & video_slot).sum(axis=1)
  is_video = np.asarray(batch.input_ids) == model.config.video_token_id
  return GenerationResult(tokens, visual, (is_video & np.asarray(batch.attention_mask).astype(bool)).sum(axis=1),
                          plan.length, timings)
