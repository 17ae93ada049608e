"""Answers from LLaVA-OneVision / LLaVA-Video, optionally OTT-Vid-compressed; and their inputs."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax.compressor.interface import CompressionMethod
from ottvid_jax import resize as resize_lib
from ottvid_jax import video as video_lib
from ottvid_jax.models.generate import GenerationResult, SamplingConfig, decode_text, generator_for, run
from ottvid_jax.models.llava_onevision import model as model_lib
from ottvid_jax.models.llava_onevision.model import LlavaConfig, LlavaOnevision
from ottvid_jax.models.sequence import plan_sequence

__all__ = ["LlavaBatch", "LlavaProcessor", "generate", "llm_input", "preprocess_frames", "video_features"]

SYSTEM = "You are a helpful assistant."


@dataclasses.dataclass(frozen=True)
class LlavaBatch:
  """Host-side model inputs.

  Attributes:
    input_ids: ``int[B, S]``, each video's placeholders expanded.
    attention_mask: ``[B, S]``.
    pixel_values_videos: ``float[F, 3, S, S]``, every video's frames in order.
    frames: per video, its frame count.
  """

  input_ids: np.ndarray
  attention_mask: np.ndarray
  pixel_values_videos: np.ndarray
  frames: tuple

  @classmethod
  def from_processor(cls, out: dict) -> "LlavaBatch":
    as_np = lambda x: np.asarray(x.numpy() if hasattr(x, "numpy") else x)  # noqa: E731
    ids = as_np(out["input_ids"])
    pixels = as_np(out["pixel_values_videos"]).astype(np.float32)  # [B, T, C, S, S]
    mask = as_np(out["attention_mask"]) if out.get("attention_mask") is not None else np.ones_like(ids)
    return cls(ids, mask, pixels.reshape((-1,) + pixels.shape[2:]), (pixels.shape[1],) * pixels.shape[0])


def preprocess_frames(frames: np.ndarray, size: int = 384, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> np.ndarray:
  """``uint8[F, H, W, 3]`` to ``float32[F, 3, size, size]`` as LLaVA-NeXT's ``SigLipImageProcessor.preprocess``.

  Its steps are transformers' ``image_transforms``: ``resize`` (Pillow's bicubic
  to ``size x size``, whatever the aspect ratio), ``rescale`` (``x * (1/255)``
  in float64, then float32) and ``normalize`` (``(x - mean) / std`` in
  float32), channels first. The authors' wrappers then cast to float16
  (``.half()``); this stays float32.
  """
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8[F, H, W, 3], got {frames.dtype}{list(frames.shape)}")
  resized = resize_lib.resize_pil_bicubic(frames, size, size).transpose(0, 3, 1, 2)
  x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)  # image_transforms.rescale: float64, then down
  mean = np.asarray(mean, np.float32)[:, None, None]  # image_transforms.normalize: in the image's float32
  std = np.asarray(std, np.float32)[:, None, None]
  return (x - mean) / std


def _vision_part(model: LlavaOnevision):
  return model.vision_tower, model.multi_modal_projector


def _tower(parts, pixels, config: LlavaConfig, saliency: bool):
  tower, projector = parts
  return model_lib.video_features(tower, projector, config, pixels.astype(projector["linear_1"].kernel.dtype),
                                  saliency=saliency)


def video_features(model: LlavaOnevision, pixels: jax.Array, saliency: bool):
  """``model.video_features(pixels, saliency=saliency)`` as one program that takes only the vision tower's and the
  projector's parameters (the host's dispatch grows with a program's parameter arrays)."""
  return generator_for(model).builder(_tower, ("config", "saliency"), part=_vision_part)(
      pixels, config=model.config, saliency=saliency)


def _assemble(model: LlavaOnevision, tokens, saliency, input_ids, text_source, video_source, compression, frames):
  return model.assemble_inputs(input_ids, tokens, saliency, frames, text_source, video_source, compression)


def llm_input(model: LlavaOnevision, batch: LlavaBatch, compression: Optional[CompressionMethod] = None):
  """What the LLM's prefill sees: ``((embeds, positions, mask), plan)``.

  The vision side is queued first (it needs only the pixels), so the GPU runs
  it while the host plans the sequence; then OTT-Vid and the assembly.
  """
  pixels = batch.pixel_values_videos
  tokens, saliency = video_features(model, pixels if isinstance(pixels, jax.Array) else jnp.asarray(pixels),
                                    saliency=compression is not None)
  frames = tuple(int(t) for t in batch.frames)
  ids = np.asarray(batch.input_ids)
  plan = plan_sequence(ids == model.config.video_token_id, batch.attention_mask,
                       model.video_slots(frames, compression), [model.config.video_tokens(t) for t in frames])
  args = jax.device_put((ids.astype(np.int32), plan.text, plan.video))  # one transfer call
  return generator_for(model).builder(_assemble, ("frames",))(tokens, saliency, *args, compression, frames=frames), plan


def generate(
    model: LlavaOnevision,
    batch: LlavaBatch,
    sampling: SamplingConfig = SamplingConfig(),
    compression=None,
    eos_token_ids: Optional[Sequence[int]] = None,
    progress: Optional[object] = None,
) -> GenerationResult:
  """Answers: SigLIP, projector, pooling, OTT-Vid (if given) before the newlines, LLM decoding."""
  return run(model, batch, llm_input, sampling, compression, eos_token_ids, progress)


@dataclasses.dataclass(frozen=True)
class LlavaProcessor:
  """Tokenizer, Qwen chat template and 384 x 384 video preprocessing of one checkpoint."""

  tokenizer: object
  model_config: object
  mean: tuple = (0.5, 0.5, 0.5)
  std: tuple = (0.5, 0.5, 0.5)

  @classmethod
  def from_checkpoint(cls, checkpoint_dir: str, config) -> "LlavaProcessor":
    from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel

    path = os.path.join(checkpoint_dir, "tokenizer.json")
    if not os.path.isfile(path):
      raise ValueError(f"{checkpoint_dir!r} has no tokenizer.json")
    kw = {}
    for name in ("video_processor/preprocessor_config.json", "video_preprocessor_config.json",
                 "preprocessor_config.json"):
      pre = os.path.join(checkpoint_dir, name)
      if os.path.isfile(pre):
        with open(pre, encoding="utf-8") as f:
          data = json.load(f)
        kw = {"mean": tuple(data.get("image_mean", (0.5,) * 3)), "std": tuple(data.get("image_std", (0.5,) * 3))}
        break
    return cls(Tokenizer.from_file(path), config, **kw)

  def prompt_ids(self, question: str, video_tokens: int) -> list[int]:
    encode = lambda text: self.tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    before = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
    after = f"\n{question}<|im_end|>\n<|im_start|>assistant\n"
    return encode(before) + [self.model_config.video_token_id] * video_tokens + encode(after)

  def __call__(self, clip: video_lib.VideoClip, question: str, max_length: Optional[int] = None) -> LlavaBatch:
    pixels = preprocess_frames(clip.frames, self.model_config.vision.image_size, self.mean, self.std)
    frames = pixels.shape[0]
    ids = self.prompt_ids(question, self.model_config.video_tokens(frames))
    if max_length is not None and len(ids) > max_length:
      raise ValueError(f"the prompt needs {len(ids)} tokens, more than the context of {max_length}")
    return LlavaBatch(np.asarray([ids], np.int32), np.ones((1, len(ids)), np.int32), pixels, (frames,))

  def decode(self, tokens) -> str:
    return decode_text(self.tokenizer, tokens, self.model_config.eos_token_ids)
