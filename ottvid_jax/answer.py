"""``ottvid answer``: a question about a video file, answered by a real checkpoint."""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import jax.numpy as jnp

from ottvid_jax import compressor
from ottvid_jax import video as video_lib

__all__ = ["Answer", "answer", "generate", "load_backbone"]


@dataclasses.dataclass(frozen=True)
class Answer:
  text: str
  visual_tokens_in: int
  visual_tokens_llm: int
  llm_length: int
  new_tokens: int
  timings: dict


def load_backbone(checkpoint: str, dtype=jnp.bfloat16):
  """``(model, processor, load seconds)`` for a checkpoint folder (architecture from ``config.json``)."""
  from ottvid_jax import models  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.llava_onevision import LlavaOnevision  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.llava_onevision.generation import LlavaProcessor  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.qwen2_5_vl.processing import QwenProcessor  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  model = models.load(checkpoint, dtype=dtype)
  kind = LlavaProcessor if isinstance(model, LlavaOnevision) else QwenProcessor
  return model, kind.from_checkpoint(checkpoint, model.config), time.perf_counter() - start


def generate(model, batch, sampling, compression, progress=None):
  """The backbone's ``generate`` for ``model``."""
  from ottvid_jax.models.llava_onevision import LlavaOnevision  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.llava_onevision import generation as llava  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.qwen2_5_vl import generation as qwen  # pylint: disable=import-outside-toplevel

  backbone = llava if isinstance(model, LlavaOnevision) else qwen
  return backbone.generate(model, batch, sampling, compression, progress=progress)


def answer(checkpoint: str, video: str, question: str, retention: Optional[float] = 0.1, frames: int = 16,
           max_new_tokens: int = 128, dtype=jnp.bfloat16, progress=None) -> Answer:
  """Loads the checkpoint, reads the video and answers (greedy decoding).

  ``retention`` None or 1.0 runs the uncompressed model.
  """
  from ottvid_jax.models.generate import SamplingConfig  # pylint: disable=import-outside-toplevel

  if retention is not None and not 0.0 < retention <= 1.0:
    raise ValueError(f"retention must lie in (0, 1], got {retention}")
  model, processor, load_s = load_backbone(checkpoint, dtype)
  clip = video_lib.read_video(video, num_frames=frames)
  batch = processor(clip, question, max_length=model.config.text.max_position_embeddings - max_new_tokens)
  compression = None if retention in (None, 1.0) else compressor.OTTVidConfig(retention=float(retention))
  result = generate(model, batch, SamplingConfig(max_new_tokens=max_new_tokens), compression, progress)
  timings = dict(result.timings, load_s=load_s)
  return Answer(processor.decode(result.tokens[0]), int(result.input_visual_tokens[0]),
                int(result.visual_tokens[0]), result.llm_length, int(result.timings["new_tokens"]), timings)
