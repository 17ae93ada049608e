"""LLaVA-OneVision / LLaVA-Video against ``transformers`` on tiny random checkpoints."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import ottvid_jax as ov
from ottvid_jax import models
from ottvid_jax.models.generate import SamplingConfig
from ottvid_jax.models.llava_onevision import LlavaConfig, LlavaOnevision
from ottvid_jax.models.llava_onevision import generation as llava_gen
from ottvid_jax.models.llava_onevision import pooling
from tests import hf_tiny

VIDEO = 105


def tiny_config():
  from transformers import LlavaOnevisionConfig

  cfg = LlavaOnevisionConfig(
      vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                         num_attention_heads=2, image_size=70, patch_size=14, layer_norm_eps=1e-6,
                         hidden_act="gelu_pytorch_tanh", vision_use_head=False),
      text_config=dict(model_type="qwen2", vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, eos_token_id=101,
                       rope_parameters=dict(rope_type="default", rope_theta=1e6)),
      image_token_index=104, video_token_index=VIDEO, vision_feature_layer=-1, vision_feature_select_strategy="full",
      projector_hidden_act="gelu", multimodal_projector_bias=True, tie_word_embeddings=False, eos_token_id=101)
  cfg._attn_implementation = "eager"  # pylint: disable=protected-access
  return cfg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  from transformers import LlavaOnevisionForConditionalGeneration

  torch.manual_seed(0)
  hf = LlavaOnevisionForConditionalGeneration(tiny_config()).eval()
  with torch.no_grad():
    hf.model.image_newline.normal_()  # zeros by default: make the newline visible in the logits
  folder = str(tmp_path_factory.mktemp("tiny_llava"))
  hf.save_pretrained(folder)
  hf_tiny.write_tokenizer(folder)
  return hf, folder, models.load(folder, dtype=jnp.float32)


def prompt(rng, frames, words=3, tokens_per_video=None):
  n = tokens_per_video or frames * 9 + 1
  return [100, 1, 101, 100, 2] + [VIDEO] * n + list(rng.integers(1, 99, size=words)) + [101, 100, 3]


@pytest.mark.parametrize("mode,size", [("bilinear", 14), ("bilinear", 3), ("average", 13)])
def test_pooling_matches_torch(mode, size):
  grid = {14: 27, 3: 5, 13: 27}[size]
  x = np.random.default_rng(0).normal(size=(2, grid, grid, 4)).astype(np.float32)
  t = torch.as_tensor(x).permute(0, 3, 1, 2)
  if mode == "bilinear":
    ref = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
  else:
    ref = torch.nn.functional.avg_pool2d(t, 2)
  got = pooling.pool(jnp.asarray(x), mode)
  np.testing.assert_allclose(got, ref.permute(0, 2, 3, 1).numpy(), atol=1e-5)  # two 1-D passes vs torch's 2-D
  assert pooling.pooled_size(27, "max") == 13
  np.testing.assert_array_equal(pooling.pool(jnp.asarray(x), "max"),
                                torch.nn.functional.max_pool2d(t, 2).permute(0, 2, 3, 1).numpy())


def test_video_features_parity(tiny):
  hf, _, ours = tiny
  pixels = torch.randn(2, 3, 3, 70, 70)
  with torch.no_grad():
    ref = hf.model.get_video_features(pixels).pooler_output.numpy()  # [B, T * 9 + 1, D]
  got, _ = ours.video_features(jnp.asarray(pixels.numpy().reshape(6, 3, 70, 70)))
  np.testing.assert_allclose(np.asarray(got).reshape(2, 27, 64), ref[:, :-1], atol=1e-5)
  np.testing.assert_allclose(ours.image_newline[...], ref[0, -1], atol=1e-6)


def test_saliency_is_received_attention_of_the_last_layer(tiny):
  """SigLIP's last run layer's attention probabilities from HF (eager), averaged over heads and queries,
  computed here a few frames at a time (9 frames: chunks of 4, 4 and 1)."""
  hf, _, ours = tiny
  pixels = torch.randn(9, 3, 70, 70)
  with torch.no_grad():
    attentions = hf.model.vision_tower(pixels, output_attentions=True).attentions  # per layer [F, E, P, P]
  layers = len(ours.vision_tower.encoder["layers"])
  ref = attentions[layers - 1].mean(dim=(1, 2)).numpy()  # [F, P]
  _, got = ours.vision_tower(jnp.asarray(pixels.numpy()), saliency=True)
  np.testing.assert_allclose(np.asarray(got), ref, atol=1e-6)
  np.testing.assert_allclose(np.asarray(got).sum(-1), 1.0, atol=1e-5)


def test_logits_parity_batch_with_padding(tiny):
  hf, _, ours = tiny
  rng = np.random.default_rng(1)
  a, b = prompt(rng, 4, words=5), prompt(rng, 4, words=1)
  length = max(len(a), len(b))
  ids = np.asarray([[0] * (length - len(a)) + a, [0] * (length - len(b)) + b])
  mask = (ids != 0).astype(np.int64)
  mask[:, -1] = 1
  pixels = torch.randn(2, 4, 3, 70, 70)
  positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
  with torch.no_grad():
    ref = hf(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), pixel_values_videos=pixels,
             position_ids=torch.as_tensor(positions)).logits.numpy()
  got = np.asarray(ours(ids, mask, pixels.numpy()))
  assert np.abs(ref).max() > 0.1
  keep = mask.astype(bool)
  np.testing.assert_allclose(got[keep], ref[keep], atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])  # with seed 0 this model's argmax is its EOS id (101) at the first step
def test_greedy_generation_matches_hf(tiny, seed):
  """Eight greedy tokens against HF's argmax over the growing sequence (HF's ``generate`` would stop at, or with
  ``min_new_tokens`` mask, the EOS id, which here is a token like any other)."""
  hf, _, ours = tiny
  rng = np.random.default_rng(2)
  ids = np.asarray([prompt(rng, 5)])
  pixels = torch.randn(1, 5, 3, 70, 70, generator=torch.Generator().manual_seed(seed))
  seq, expect = torch.as_tensor(ids), []
  with torch.no_grad():
    for _ in range(8):
      logits = hf(input_ids=seq, attention_mask=torch.ones(seq.shape, dtype=torch.long), pixel_values_videos=pixels).logits
      expect.append(int(logits[0, -1].argmax()))
      seq = torch.cat([seq, torch.tensor([[expect[-1]]])], 1)
  assert seed != 0 or expect[0] == 101
  batch = llava_gen.LlavaBatch(ids, np.ones_like(ids), pixels.numpy().reshape(5, 3, 70, 70), (5,))
  got = llava_gen.generate(ours, batch, SamplingConfig(max_new_tokens=8), eos_token_ids=[])
  assert list(got.tokens[0]) == expect


def lmms_lab_name(key: str) -> str:
  """The original lmms-lab naming of an in-memory ``state_dict`` key."""
  for old, new in (("model.vision_tower.", "model.vision_tower.vision_tower.vision_model."),
                   ("model.multi_modal_projector.linear_1.", "model.mm_projector.0."),
                   ("model.multi_modal_projector.linear_2.", "model.mm_projector.2."),
                   ("model.language_model.", "model.")):
    if key.startswith(old):
      return new + key[len(old):]
  return key


@pytest.mark.parametrize("layout", ["lmms_lab", "in_memory"])
def test_other_weight_layouts(tiny, tmp_path, layout):
  from safetensors.torch import save_file

  hf, folder, ours = tiny
  rng = np.random.default_rng(3)
  ids = np.asarray([prompt(rng, 2)])
  pixels = np.random.default_rng(4).normal(size=(1, 2, 3, 70, 70)).astype(np.float32)
  expect = np.asarray(ours(ids, None, pixels))
  state = {k: v.contiguous() for k, v in hf.state_dict().items()}
  if layout == "lmms_lab":
    state = {lmms_lab_name(k): v for k, v in state.items()}
    assert "model.vision_tower.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight" in state
  save_file(state, str(tmp_path / "model.safetensors"))
  (tmp_path / "config.json").write_text(open(os.path.join(folder, "config.json")).read())
  again = models.load(str(tmp_path), dtype=jnp.float32)
  np.testing.assert_allclose(np.asarray(again(ids, None, pixels)), expect, atol=1e-6)


def test_feature_layer_and_unused_tensors(tiny, tmp_path):
  """vision_feature_layer = -2 runs one layer fewer; the unused layer and the post-norm are ignored."""
  from transformers import LlavaOnevisionForConditionalGeneration

  cfg = tiny_config()
  cfg.vision_feature_layer = -2
  torch.manual_seed(1)
  hf = LlavaOnevisionForConditionalGeneration(cfg).eval()
  hf.save_pretrained(str(tmp_path))
  ours = models.load(str(tmp_path), dtype=jnp.float32)
  assert len(ours.vision_tower.encoder["layers"]) == 2
  pixels = torch.randn(1, 2, 3, 70, 70)
  with torch.no_grad():
    ref = hf.model.get_video_features(pixels, vision_feature_layer=-2).pooler_output.numpy()
  got, _ = ours.video_features(jnp.asarray(pixels.numpy()[0]))
  np.testing.assert_allclose(np.asarray(got).reshape(18, 64), ref[0, :-1], atol=1e-5)


@pytest.mark.parametrize("pool,newline,per_frame", [("average", "grid", 2 * 3), ("bilinear", "frame", 9 + 1),
                                                     ("average", "no_token", 4), ("max", "one_token", 4)])
def test_pooling_and_newline_modes(tiny, pool, newline, per_frame):
  _, _, ours = tiny
  model = LlavaOnevision(dataclasses.replace(ours.config, pool=pool, newline=newline), rngs=nnx.Rngs(0))
  nnx.update(model, nnx.state(ours))
  frames = 3
  count = model.config.video_tokens(frames)
  assert count == frames * per_frame + (1 if newline == "one_token" else 0)
  rng = np.random.default_rng(5)
  ids = np.asarray([prompt(rng, frames, tokens_per_video=count)])
  pixels = rng.normal(size=(frames, 3, 70, 70)).astype(np.float32)
  batch = llava_gen.LlavaBatch(ids, np.ones_like(ids), pixels, (frames,))
  (embeds, positions, mask), plan = llava_gen.llm_input(model, batch)
  video = np.asarray(embeds)[0, plan.video[0] >= 0]
  newline_rows = np.flatnonzero(np.all(np.isclose(video, np.asarray(ours.image_newline[...])), axis=1))
  expect = {"grid": [2, 5, 8, 11, 14, 17], "frame": [9, 19, 29], "no_token": [], "one_token": [12]}[newline]
  np.testing.assert_array_equal(newline_rows, expect)
  np.testing.assert_array_equal(positions[0], np.arange(ids.shape[1]))


@pytest.mark.parametrize("newline", ["one_token", "frame"])
def test_compression_before_newlines(tiny, newline):
  _, _, ours = tiny
  model = LlavaOnevision(dataclasses.replace(ours.config, newline=newline), rngs=nnx.Rngs(0))
  nnx.update(model, nnx.state(ours))
  frames = 8  # 8 x 9 = 72 pooled tokens
  rng = np.random.default_rng(6)
  ids = np.asarray([prompt(rng, frames, tokens_per_video=model.config.video_tokens(frames))])
  pixels = rng.normal(size=(frames, 3, 70, 70)).astype(np.float32)
  batch = llava_gen.LlavaBatch(ids, np.ones_like(ids), pixels, (frames,))
  plain = llava_gen.generate(model, batch, SamplingConfig(max_new_tokens=4), eos_token_ids=[])
  same = llava_gen.generate(model, batch, SamplingConfig(max_new_tokens=4), ov.OTTVidConfig(retention=1.0),
                            eos_token_ids=[])
  np.testing.assert_array_equal(plain.tokens, same.tokens)
  # A 3 x 3 pooled grid keeps K = 1 token a frame at r = 0.1, which leaves nothing to merge; r = 0.25
  # exercises the same path here. (On the real 14 x 14 grid r = 0.1 gives 627 of 6272 tokens: checked below.)
  assert ov.budget(ov.OTTVidConfig(retention=0.1), 32, 196).slots <= 0.1 * 32 * 196
  cfg = ov.OTTVidConfig(retention=0.25)
  (embeds, positions, mask), plan = llava_gen.llm_input(model, batch, cfg)
  newlines = model.config.newlines(frames)
  video_slots = (plan.video[0] >= 0) & np.asarray(mask[0])
  assert video_slots.sum() <= 0.25 * 72 + newlines
  np.testing.assert_array_equal(positions[0], np.arange(plan.length))  # contiguous over real tokens
  # Survivors are grouped by anchor frame: compare with the compressor run on the same features.
  feats, sal = model.video_features(jnp.asarray(pixels), saliency=True)
  out = ov.compress(feats, sal, cfg, grid_hw=(3, 3))
  assert int(out.diagnostics.accepted.sum()) > 0  # merges happened
  video = np.asarray(embeds)[0, plan.video[0] >= 0]
  anchor_frames = np.asarray(out.index) // 9
  if newline == "frame":  # newline after each frame's group: frame t's group ends before newline t
    newline_rows = np.flatnonzero(np.all(np.isclose(video, np.asarray(model.image_newline[...])), axis=1))
    counts = np.bincount(anchor_frames, minlength=frames)
    np.testing.assert_array_equal(newline_rows, np.cumsum(counts) + np.arange(frames))
  kept = video[~np.all(np.isclose(video, np.asarray(model.image_newline[...])), axis=1)]
  np.testing.assert_allclose(kept, np.asarray(out.tokens), atol=1e-6)
  result = llava_gen.generate(model, batch, SamplingConfig(max_new_tokens=4), cfg, eos_token_ids=[])
  assert result.visual_tokens[0] == 18 + newlines and result.input_visual_tokens[0] == model.config.video_tokens(8)


def test_pixels_equal_hf_processor_at_384():
  from transformers import LlavaOnevisionVideoProcessor

  frames = np.random.default_rng(7).integers(0, 256, (3, 384, 384, 3), dtype=np.uint8)
  processor = LlavaOnevisionVideoProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3)
  ref = processor(videos=[frames], return_tensors="np")["pixel_values_videos"][0]
  np.testing.assert_allclose(llava_gen.preprocess_frames(frames), ref, atol=1e-6)


def test_answer_with_a_llava_checkpoint(tiny):
  from ottvid_jax.answer import answer
  from ottvid_jax import video

  _, folder, _ = tiny
  path, _ = video.sample_clip("bikes")
  result = answer(folder, path, "what is in the video?", retention=0.25, frames=4, max_new_tokens=3,
                  dtype=jnp.float32)
  assert result.visual_tokens_in == 4 * 9 + 1 and result.visual_tokens_llm == 9 + 1


def test_demo_with_a_llava_checkpoint(tiny, tmp_path):
  import io
  import json

  from rich.console import Console

  from ottvid_jax import demo, sampling, video
  from ottvid_jax.eval.protocol import PAPER

  _, folder, _ = tiny
  path, _ = video.sample_clip("bikes")
  result = demo.run_demo(video=path, checkpoint=folder, frames=4, retention=0.5, out=str(tmp_path / "d"),
                         console=Console(file=io.StringIO()))
  summary = json.loads(open(result.summary_path, encoding="utf-8").read())
  rule = PAPER.with_frames(4).inputs["llava_onevision"].frames
  assert summary["frames_sampled"] == [int(i) for i in sampling.frame_indices(rule, 250, 25.0, None).indices]
  assert summary["tokens"]["input"] == 4 * 9 and summary["tokens"]["output"] == 18  # 3 x 3 pooled grid a frame


@pytest.mark.parametrize("make", [LlavaConfig.llava_onevision_7b, LlavaConfig.llava_video_7b])
def test_shapes_of_the_7b_models(make):
  cfg = make()
  model = nnx.eval_shape(lambda: LlavaOnevision(cfg, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
  params = sum(x.size for x in jax.tree_util.tree_leaves(nnx.state(model)))
  assert 8.0e9 < params < 8.1e9  # llava-onevision-qwen2-7b: 8.03 B parameters
  frames = 32 if cfg.newline == "one_token" else 64
  assert cfg.video_tokens(frames) == {"one_token": 32 * 196 + 1, "grid": 64 * 182}[cfg.newline]
  graphdef, state = nnx.split(model)
  pixels = jax.ShapeDtypeStruct((frames, 3, 384, 384), jnp.bfloat16)
  feats = jax.eval_shape(lambda s, p: nnx.merge(graphdef, s).video_features(p, saliency=True), state, pixels)
  n = cfg.pooled ** 2
  assert feats[0].shape == (frames, n, 3584) and feats[1].shape == (frames, n)


def test_lmms_lab_config():
  """The original LLaVA-Video config (``mm_*`` keys, no vision_config) maps to the evaluation's layout."""
  cfg = LlavaConfig.from_hf({
      "architectures": ["LlavaQwenForCausalLM"], "mm_vision_tower": "google/siglip-so400m-patch14-384",
      "mm_spatial_pool_mode": "average", "mm_newline_position": "grid", "vocab_size": 152064, "hidden_size": 3584,
      "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
      "rope_theta": 1000000.0, "max_position_embeddings": 32768})
  assert (cfg.pool, cfg.newline, cfg.pooled, cfg.vision.feature_layers) == ("average", "grid", 13, 26)
  assert cfg.video_tokens(64) == 64 * 182
  with pytest.raises(NotImplementedError):
    LlavaConfig.from_hf({"mm_vision_tower": "openai/clip-vit-large-patch14"})
  with pytest.raises(NotImplementedError):
    dataclasses.replace(cfg, pool="nearest")
