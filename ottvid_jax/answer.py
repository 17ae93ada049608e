"""``ottvid answer``: a question about a video file, answered by a real checkpoint."""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import jax.numpy as jnp

from ottvid_jax import inputs as inputs_lib
from ottvid_jax import video as video_lib

__all__ = ["Answer", "Answerer", "answer", "compression_for", "generate", "load_backbone", "make_answerer"]


@dataclasses.dataclass(frozen=True)
class Answer:
  """One answer and what produced it.

  Attributes:
    text: the decoded answer.
    visual_tokens_in: visual tokens out of the vision tower.
    visual_tokens_llm: visual tokens into the language model (after compression).
    llm_length: the language model's prefill length.
    new_tokens: tokens generated.
    timings: ``load_s``, ``first_token_s`` (compilation included), ``decode_s``, ...
    protocol: the protocol's name (its frames, pixels and positions were used).
    inputs: the sampled frames, pixels, positions and prompt, as a results record keeps them.
  """

  text: str
  visual_tokens_in: int
  visual_tokens_llm: int
  llm_length: int
  new_tokens: int
  timings: dict
  protocol: str = "paper"
  inputs: dict = dataclasses.field(default_factory=dict)


def load_backbone(checkpoint: str, dtype=jnp.bfloat16):
  """``(model, processor, load seconds)`` for a checkpoint folder (architecture from ``config.json``)."""
  from ottvid_jax import models  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  model = models.load(checkpoint, dtype=dtype)
  processor = models.registry.of(model).processor(checkpoint, model.config)
  return model, processor, time.perf_counter() - start


def generate(model, batch, sampling, compression, progress=None):
  """The backbone's ``generate`` for ``model``."""
  from ottvid_jax.models import registry  # pylint: disable=import-outside-toplevel

  return registry.of(model).generate(model, batch, sampling, compression, progress=progress)


def answer(checkpoint: str, video: str, question: str, retention: Optional[float] = 0.1,
           frames: Optional[int] = None, max_new_tokens: int = 128, dtype=jnp.bfloat16, progress=None,
           protocol: str = "paper", method: str = "ottvid") -> Answer:
  """Loads the checkpoint, reads the video as ``protocol`` samples it and answers (greedy decoding).

  The frames, pixels and time positions are the protocol's for this backbone
  (the same :func:`ottvid_jax.inputs.prepare` as ``ottvid eval``); the question
  is asked as given. ``method`` is ``ottvid``, a peer's name or ``none``;
  ``retention`` None or 1.0 runs the uncompressed model; ``frames`` overrides
  the protocol's frame count (:meth:`~ottvid_jax.eval.protocol.Protocol.with_frames`).
  """
  from ottvid_jax.eval.protocol import get_protocol  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models.generate import SamplingConfig  # pylint: disable=import-outside-toplevel

  if retention is not None and not 0.0 < retention <= 1.0:
    raise ValueError(f"retention must lie in (0, 1], got {retention}")
  chosen = get_protocol(protocol)
  if frames is not None:
    chosen = chosen.with_frames(frames)
  video_lib.probe(video)  # an unreadable video fails before the checkpoint loads
  model, processor, load_s = load_backbone(checkpoint, dtype)
  prepared = inputs_lib.prepare(model, processor, chosen.inputs[inputs_lib.backbone_name(model)], video, question,
                                max_length=model.config.text.max_position_embeddings - max_new_tokens)
  compression = None if retention in (None, 1.0) else compression_for(method, retention)
  result = generate(model, prepared.batch, SamplingConfig(max_new_tokens=max_new_tokens), compression, progress)
  timings = dict(result.timings, load_s=load_s)
  return Answer(processor.decode(result.tokens[0]), int(result.input_visual_tokens[0]),
                int(result.visual_tokens[0]), result.llm_length, int(result.timings["new_tokens"]), timings,
                chosen.name, prepared.describe())


def compression_for(method: str, retention: float):
  """None for ``method="none"``, else the registered method's config at ``retention`` (its default options)."""
  from ottvid_jax.compressor import interface  # pylint: disable=import-outside-toplevel

  return None if method == "none" else interface.make(method, retention)


def make_answerer(checkpoint: str, method: str = "ottvid", retention: float = 0.1, protocol=None,
                  dtype=jnp.bfloat16, devices=None, tensor_parallel: bool = False):
  """``sample -> (response, extra)`` for :func:`ottvid_jax.eval.evaluate`: the model is loaded once.

  Each question is asked as ``protocol`` says (its frames, pixels, time
  positions, prompt wording and ``max_new_tokens`` for the question's
  benchmark and this backbone), greedily decoded. ``extra`` records what
  produced the answer: the sampled frame numbers, the grid and time positions
  (Qwen2.5-VL) or the pixel shape (LLaVA), the prompt, the visual tokens
  before and after compression and the time to the first token.

  With ``devices`` (a list), returns one answerer per device, each with its own
  replica of the weights (data parallel: give the list to ``evaluate``); with
  ``tensor_parallel``, one answerer whose weights are split over all local
  devices (``ottvid_jax.models.sharding``). The answerers' ``backbone``
  attribute names the backbone.
  """
  from ottvid_jax.eval.protocol import PAPER  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models import sharding  # pylint: disable=import-outside-toplevel

  model, processor, _ = load_backbone(checkpoint, dtype)
  if tensor_parallel:
    model = sharding.tensor_parallel(model, sharding.make_mesh())
  protocol = protocol or PAPER
  if devices:
    return [Answerer(sharding.replicate_to(model, d), processor, compression_for(method, retention), protocol)
            for d in devices]
  return Answerer(model, processor, compression_for(method, retention), protocol)


@dataclasses.dataclass
class Answerer:
  """Answers benchmark questions with one model replica under one protocol."""

  model: object
  processor: object
  compression: object
  protocol: object

  @property
  def backbone(self) -> str:
    return inputs_lib.backbone_name(self.model)

  def __call__(self, sample) -> tuple[str, dict]:
    from ottvid_jax.eval import prompts  # pylint: disable=import-outside-toplevel
    from ottvid_jax.models.generate import SamplingConfig  # pylint: disable=import-outside-toplevel

    backbone, benchmark = self.backbone, sample.benchmark
    context = {}
    if benchmark == "videomme_w_subtitle":
      fps, count = prompts.cv2_frame_info(sample.video)
      context = {"fps": fps, "frame_count": count}
    text = prompts.prompt(sample, backbone, self.protocol.style(benchmark), **context)
    new_tokens = self.protocol.new_tokens(benchmark)
    prepared = inputs_lib.prepare(self.model, self.processor, self.protocol.inputs_for(backbone, benchmark),
                                  sample.video, text, window=sample.window, frame_rate=sample.frame_rate,
                                  max_length=self.model.config.text.max_position_embeddings - new_tokens)
    result = generate(self.model, prepared.batch, SamplingConfig(max_new_tokens=new_tokens), self.compression)
    return self.processor.decode(result.tokens[0]), {
        **prepared.describe(), "max_new_tokens": new_tokens, "visual_tokens_in": int(result.input_visual_tokens[0]),
        "visual_tokens_llm": int(result.visual_tokens[0]), "first_token_s": result.timings["first_token_s"]}
