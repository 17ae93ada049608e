"""``ottvid answer``: a question about a video file, answered by a real checkpoint."""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import jax.numpy as jnp

from ottvid_jax import compressor
from ottvid_jax import video as video_lib

__all__ = ["Answer", "answer", "compression_for", "generate", "load_backbone", "make_answerer"]


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


def compression_for(method: str, retention: float):
  """None (``method="none"``), an ``OTTVidConfig`` (``"ottvid"``) or a peer's ``PeerConfig``."""
  from ottvid_jax import peers  # pylint: disable=import-outside-toplevel

  if method == "none":
    return None
  if method == "ottvid":
    return compressor.OTTVidConfig(retention=float(retention))
  return peers.PeerConfig(method, float(retention))


def default_frames(model) -> int:
  """The evaluation frame counts of the paper's protocol: 64 for LLaVA-Video, else 32."""
  newline = getattr(model.config, "newline", None)
  return 64 if newline == "grid" else 32


def make_answerer(checkpoint: str, method: str = "ottvid", retention: float = 0.1, frames: Optional[int] = None,
                  dtype=jnp.bfloat16, devices=None, tensor_parallel: bool = False):
  """``sample -> (response, extra)`` for ``ottvid_jax.eval.evaluate``: the model is loaded once.

  Greedy decoding, 8 new tokens for multiple choice and 48 for grounding;
  ``extra`` records the visual tokens before and after compression and the time
  to the first token.

  With ``devices`` (a list), returns one answerer per device, each with its own
  replica of the weights (data parallel: give the list to ``evaluate``); with
  ``tensor_parallel``, one answerer whose weights are split over all local
  devices (``ottvid_jax.models.sharding``).
  """
  from ottvid_jax.models import sharding  # pylint: disable=import-outside-toplevel

  model, processor, _ = load_backbone(checkpoint, dtype)
  if tensor_parallel:
    model = sharding.tensor_parallel(model, sharding.make_mesh())
  if devices:
    return [_answerer(sharding.replicate_to(model, d), processor, method, retention, frames) for d in devices]
  return _answerer(model, processor, method, retention, frames)


def _answerer(model, processor, method, retention, frames):
  from ottvid_jax.eval import prompt  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.generate import SamplingConfig  # pylint: disable=import-outside-toplevel

  compression = compression_for(method, retention)
  frames = frames or default_frames(model)

  def answer_sample(sample):
    clip = video_lib.read_video(sample.video, num_frames=frames)
    new_tokens = 48 if sample.grounding else 8
    batch = processor(clip, prompt(sample), max_length=model.config.text.max_position_embeddings - new_tokens)
    result = generate(model, batch, SamplingConfig(max_new_tokens=new_tokens), compression)
    return processor.decode(result.tokens[0]), {"visual_tokens_in": int(result.input_visual_tokens[0]),
                                                "visual_tokens_llm": int(result.visual_tokens[0]),
                                                "first_token_s": result.timings["first_token_s"]}

  return answer_sample
