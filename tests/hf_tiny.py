"""Tiny random Hugging Face models, saved by ``transformers`` itself, for parity tests.

Also: a word-level tokenizer with the models' special tokens, and the import of
torchvision's pure-Python parts beside a CPU-only torch (its compiled ops fail
to register there; the HF video processors need only the transforms).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

SPECIAL = {"<|im_start|>": 100, "<|im_end|>": 101, "<|vision_start|>": 102, "<|vision_end|>": 103,
           "<|image_pad|>": 104, "<|video_pad|>": 105, "<|endoftext|>": 106}
WORDS = ["system", "user", "assistant", "You", "are", "a", "helpful", "assistant.", "what", "is", "in", "the",
         "video?", "describe", "it", "\n"]


def qwen_config(**text_overrides):
  from transformers import Qwen2_5_VLConfig  # pylint: disable=import-outside-toplevel

  text = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-6, eos_token_id=101,
              rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[2, 3, 3]))
  text.update(text_overrides)
  cfg = Qwen2_5_VLConfig(
      vision_config=dict(depth=2, hidden_size=32, intermediate_size=48, num_heads=2, in_channels=3, patch_size=14,
                         temporal_patch_size=2, spatial_merge_size=2, window_size=56, fullatt_block_indexes=[1],
                         out_hidden_size=64, tokens_per_second=2, hidden_act="silu"),
      text_config=text, image_token_id=104, video_token_id=105, vision_start_token_id=102,
      vision_end_token_id=103, tie_word_embeddings=False, eos_token_id=101, bos_token_id=106)
  cfg._attn_implementation = "eager"  # pylint: disable=protected-access
  return cfg


def tiny_qwen(seed: int = 0, **text_overrides):
  import torch  # pylint: disable=import-outside-toplevel
  from transformers import Qwen2_5_VLForConditionalGeneration  # pylint: disable=import-outside-toplevel

  torch.manual_seed(seed)
  return Qwen2_5_VLForConditionalGeneration(qwen_config(**text_overrides)).eval()


def save_tiny_qwen(folder: str, seed: int = 0) -> str:
  """A tiny random Qwen2.5-VL checkpoint with its tokenizer, saved by ``transformers`` in ``folder``."""
  tiny_qwen(seed=seed).save_pretrained(folder)
  write_tokenizer(folder)
  return folder


def write_tokenizer(folder: str) -> None:
  """A word-level ``tokenizer.json`` whose special tokens have the tiny models' ids."""
  from tokenizers import Tokenizer, models, pre_tokenizers  # pylint: disable=import-outside-toplevel
  from tokenizers import AddedToken  # pylint: disable=import-outside-toplevel

  vocab = {"[UNK]": 0}
  for i, w in enumerate(WORDS):
    vocab[w] = i + 1
  for i in range(len(vocab), 100):
    vocab[f"w{i}"] = i
  vocab.update(SPECIAL)
  tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
  tok.pre_tokenizer = pre_tokenizers.Whitespace()
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
  tok.save(os.path.join(folder, "tokenizer.json"))
  with open(os.path.join(folder, "preprocessor_config.json"), "w", encoding="utf-8") as f:
    json.dump({"image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258,
                                                                                0.27577711]}, f)


def import_torchvision():
  """Imports torchvision when its compiled operators cannot register (CPU torch)."""
  import torch  # pylint: disable=import-outside-toplevel
  import torch.library  # pylint: disable=import-outside-toplevel

  def tolerant(fn):
    def wrapper(*args, **kwargs):
      try:
        result = fn(*args, **kwargs)
      except RuntimeError as err:
        if "does not exist" in str(err):
          return lambda f: f
        raise
      if not callable(result):
        return result

      def decorate(f):
        try:
          return result(f)
        except RuntimeError as err:
          if "does not exist" in str(err):
            return f
          raise
      return decorate
    return wrapper

  saved = {name: getattr(torch.library, name) for name in ("register_fake", "impl_abstract")
           if hasattr(torch.library, name)}
  saved_impl = torch.library.Library.impl
  for name, fn in saved.items():
    setattr(torch.library, name, tolerant(fn))
  torch.library.Library.impl = tolerant(saved_impl)
  for module in [m for m in sys.modules if m.startswith("torchvision")]:
    del sys.modules[module]
  try:
    import torchvision  # pylint: disable=import-outside-toplevel
  finally:
    for name, fn in saved.items():
      setattr(torch.library, name, fn)
    torch.library.Library.impl = saved_impl
  return torchvision


def random_video_inputs(rng: np.random.Generator, grids, question_words=3):
  """Token ids and patches for videos of the given ``(t, h, w)`` grids (one row)."""
  ids = [100, 1, 16, 101, 16, 100, 2, 16]
  pixels = []
  for t, h, w in grids:
    ids += [102] + [105] * (t * h * w // 4) + [103]
    pixels.append(rng.normal(size=(t * h * w, 1176)).astype(np.float32))
  ids += list(rng.integers(1, 99, size=question_words)) + [101, 16, 100, 3, 16]
  return ids, np.concatenate(pixels)
