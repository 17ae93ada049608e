"""Qwen2.5-VL against ``transformers`` on tiny random checkpoints saved by ``save_pretrained``."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import ottvid_jax as ov
from ottvid_jax import models
from ottvid_jax.models.generate import Generator, SamplingConfig
from ottvid_jax.models.qwen2_5_vl import Qwen2_5_VL, Qwen2_5_VLConfig, rope_index, vision, vision_layout
from ottvid_jax.models.qwen2_5_vl.generation import VideoBatch, generate, llm_input
from tests import hf_tiny

VIDEO = 105


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """(HF model, checkpoint folder, our float32 model)."""
  folder = str(tmp_path_factory.mktemp("tiny_qwen"))
  hf = hf_tiny.tiny_qwen()
  hf.save_pretrained(folder)
  hf_tiny.write_tokenizer(folder)
  return hf, folder, models.load(folder, dtype=jnp.float32)


def hf_logits(hf, ids, mask, pixels, grid, positions):
  tt = (torch.as_tensor(ids) == VIDEO).int() * 2
  with torch.no_grad():
    return hf(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask),
              pixel_values_videos=torch.as_tensor(pixels), video_grid_thw=torch.tensor(grid),
              position_ids=torch.as_tensor(positions).long(), mm_token_type_ids=tt).logits.numpy()


@pytest.mark.parametrize("grid", [[(2, 4, 4)], [(3, 6, 8)], [(2, 10, 12)], [(1, 8, 8), (2, 4, 6)]])
def test_vision_tower_parity(tiny, grid):
  hf, _, ours = tiny
  rng = np.random.default_rng(0)
  pixels = rng.normal(size=(sum(t * h * w for t, h, w in grid), 1176)).astype(np.float32)
  with torch.no_grad():
    ref = hf.model.visual(torch.as_tensor(pixels), grid_thw=torch.tensor(grid)).pooler_output.numpy()
  got, saliency = ours.visual(jnp.asarray(pixels), tuple(grid))
  np.testing.assert_allclose(got, ref, atol=1e-5)
  assert saliency.shape == (got.shape[0],)


def test_vision_tower_parity_with_the_fused_kernels(tiny):
  """The window attention and the residual adds with their norms through the Pallas kernels (in their
  interpreter): partial windows, two videos."""
  hf, _, ours = tiny
  grid = [(2, 10, 12), (1, 4, 6)]
  pixels = np.random.default_rng(2).normal(size=(sum(t * h * w for t, h, w in grid), 1176)).astype(np.float32)
  with torch.no_grad():
    ref = hf.model.visual(torch.as_tensor(pixels), grid_thw=torch.tensor(grid)).pooler_output.numpy()
  ours.visual.kernels = "interpret"
  try:
    got, _ = ours.visual(jnp.asarray(pixels), tuple(grid), saliency=False)
  finally:
    ours.visual.kernels = "auto"
  np.testing.assert_allclose(got, ref, atol=1e-5)


def test_tower_as_two_programs(tiny):
  """``llm_input``'s tower (patch embedding + first block, then the rest, each program with its own parameters)
  equals the one-call tower, saliency included; prefill and decoding take the language side's parameters."""
  from ottvid_jax.models.generate import generator_for
  from ottvid_jax.models.qwen2_5_vl import generation

  _, _, ours = tiny
  grid = ((2, 10, 12), (1, 4, 6))
  pixels = jnp.asarray(np.random.default_rng(3).normal(size=(sum(t * h * w for t, h, w in grid), 1176)), jnp.float32)
  want, want_saliency = ours.visual(pixels, grid, saliency=True)
  got, saliency = generation.video_features(ours, pixels, grid, saliency=True)
  np.testing.assert_allclose(got, want, atol=1e-6)
  np.testing.assert_allclose(saliency, want_saliency, atol=1e-7)
  assert generation.video_features(ours, pixels, grid, saliency=False)[1] is None

  def compiled():
    return {fn.__name__: jitted._cache_size() for (fn, *_), (jitted, _) in generator_for(ours)._builders.items()}  # noqa: SLF001

  before = compiled()
  for saliency in (True, False):  # compiled already: no new trace
    generation.video_features(ours, pixels, grid, saliency=saliency)
  assert compiled() == before
  block = len(jax.tree.leaves(nnx.state(ours.visual.blocks[0])))
  sizes = {fn.__name__: len(leaves) for (fn, *_), (_, leaves) in generator_for(ours)._builders.items()}  # noqa: SLF001
  embed, merger = (len(jax.tree.leaves(nnx.state(m))) for m in (ours.visual.patch_embed, ours.visual.merger))
  assert sizes["_tower_head"] == embed + block and sizes["_tower_rest"] == block + merger
  head = 0 if ours.tie_word_embeddings else len(jax.tree.leaves(nnx.state(ours.lm_head)))
  assert len(generator_for(ours).leaves) == len(jax.tree.leaves(nnx.state(ours.language_model))) + head  # no vision


def test_saliency_is_last_block_received_attention(tiny):
  """Recomputed from HF's own modules: softmax attention per temporal grid, mean over heads and queries."""
  from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

  hf, _, ours = tiny
  grid = [(2, 6, 8)]
  pixels = np.random.default_rng(1).normal(size=(96, 1176)).astype(np.float32)
  visual = hf.model.visual
  captured = {}
  hook = visual.blocks[-1].register_forward_pre_hook(lambda m, args, kw: captured.update(x=args[0] if args else
                                                                                           kw["hidden_states"]),
                                                      with_kwargs=True)
  with torch.no_grad():
    visual(torch.as_tensor(pixels), grid_thw=torch.tensor(grid))
  hook.remove()
  layout = vision_layout(tuple(grid), 2, 56, 14)
  order = (layout.window_index[:, None] * 4 + np.arange(4)).reshape(-1)
  block = visual.blocks[-1]
  with torch.no_grad():
    x = block.norm1(captured["x"])
    qkv = block.attn.qkv(x).reshape(96, 3, 2, 16).permute(1, 0, 2, 3)
    cos, sin = vision.rotary(ours.config.vision, layout.positions)
    cos = torch.as_tensor(np.asarray(cos)[order])
    sin = torch.as_tensor(np.asarray(sin)[order])
    q, k = apply_rotary_pos_emb_vision(qkv[0], qkv[1], cos, sin)
    received = []
    for g in range(2):  # each temporal grid is a contiguous span of 48 patches in window order
      qs, ks = q[48 * g:48 * g + 48].transpose(0, 1), k[48 * g:48 * g + 48].transpose(0, 1)
      probs = torch.softmax(qs @ ks.transpose(-1, -2) / 4.0, dim=-1)  # [E, L, L]
      received.append(probs.mean(0).mean(0))
  per_unit = torch.cat(received).reshape(-1, 4).mean(-1).numpy()[np.argsort(layout.window_index)]
  _, saliency = ours.visual(jnp.asarray(pixels), tuple(grid))
  np.testing.assert_allclose(saliency, per_unit, atol=1e-6)


@pytest.mark.parametrize("grids,frames_odd", [([(2, 4, 4)], False), ([(3, 6, 8)], True), ([(2, 8, 10)], False)])
def test_logits_parity(tiny, grids, frames_odd):
  hf, _, ours = tiny
  rng = np.random.default_rng(2)
  ids, pixels = hf_tiny.random_video_inputs(rng, grids)
  ids = np.asarray([ids])
  mask = np.ones_like(ids)
  positions, _ = rope_index(ids, tuple(grids), [1.0], mask, ours.config)
  ref = hf_logits(hf, ids, mask, pixels, grids, positions)
  got = ours(ids, mask, pixels, grids, [1.0])
  assert np.abs(ref).max() > 0.1
  np.testing.assert_allclose(got, ref, atol=1e-4)


def test_batch_with_left_padding(tiny):
  hf, _, ours = tiny
  rng = np.random.default_rng(3)
  a, pa = hf_tiny.random_video_inputs(rng, [(2, 4, 4)], question_words=6)
  b, pb = hf_tiny.random_video_inputs(rng, [(2, 6, 4)], question_words=2)
  length = max(len(a), len(b))
  ids = np.asarray([[0] * (length - len(a)) + a, [0] * (length - len(b)) + b])
  mask = (np.arange(length)[None] >= np.array([[length - len(a)], [length - len(b)]])).astype(np.int64)
  grids = [(2, 4, 4), (2, 6, 4)]
  pixels = np.concatenate([pa, pb])
  positions, _ = rope_index(ids, tuple(grids), [1.0, 0.5], mask, ours.config)
  ref = hf_logits(hf, ids, mask, pixels, grids, positions)
  got = np.asarray(ours(ids, mask, pixels, grids, [1.0, 0.5]))
  np.testing.assert_allclose(got[mask.astype(bool)], ref[mask.astype(bool)], atol=1e-4)


def test_rope_index_reference_rule():
  cfg = Qwen2_5_VLConfig.from_hf(hf_tiny.qwen_config().to_dict())
  ids = np.asarray([[1, 2, 102] + [VIDEO] * 8 + [103, 5]])
  positions, delta = rope_index(ids, ((2, 4, 4),), [1.0], None, cfg)
  # t ids step by tokens_per_second * seconds = 2; text after the video starts at max + 1.
  np.testing.assert_array_equal(positions[0, 0], [0, 1, 2, 3, 3, 3, 3, 5, 5, 5, 5, 6, 7])
  np.testing.assert_array_equal(positions[1, 0], [0, 1, 2, 3, 3, 4, 4, 3, 3, 4, 4, 6, 7])
  np.testing.assert_array_equal(positions[2, 0], [0, 1, 2, 3, 4, 3, 4, 3, 4, 3, 4, 6, 7])
  assert delta[0] == 8 - 13


def test_checkpoint_layouts_and_shards(tiny, tmp_path):
  from safetensors.torch import save_model

  hf, folder, ours = tiny
  rng = np.random.default_rng(4)
  ids, pixels = hf_tiny.random_video_inputs(rng, [(2, 4, 4)])
  ids = np.asarray([ids])
  expect = np.asarray(ours(ids, None, pixels, [(2, 4, 4)], [1.0]))
  in_memory = tmp_path / "in_memory"
  in_memory.mkdir()
  save_model(hf, str(in_memory / "model.safetensors"))  # model.visual.*, model.language_model.*
  (in_memory / "config.json").write_text(open(os.path.join(folder, "config.json")).read())
  sharded = tmp_path / "sharded"
  hf.save_pretrained(str(sharded), max_shard_size="100KB")
  assert os.path.isfile(sharded / "model.safetensors.index.json")
  for path in (in_memory, sharded):
    again = models.load(str(path), dtype=jnp.float32)
    np.testing.assert_allclose(np.asarray(again(ids, None, pixels, [(2, 4, 4)], [1.0])), expect, atol=1e-6)
  mlp = ours.visual.blocks[0].mlp  # 48 units padded to 128 with zero weights
  assert mlp.down_proj.kernel.shape[0] == 128 and not np.any(np.asarray(mlp.down_proj.kernel)[48:])
  gate_up = np.asarray(mlp.gate_up_proj.kernel)
  assert gate_up.shape[1] == 256 and not np.any(gate_up[:, 48:128]) and not np.any(gate_up[:, 176:])
  assert not np.any(np.asarray(mlp.gate_up_proj.bias)[176:]) and np.any(gate_up[:, 128:176])
  top = ov.load(folder, dtype=jnp.float32)  # the package-level entry point
  np.testing.assert_allclose(np.asarray(top(ids, None, pixels, [(2, 4, 4)], [1.0])), expect, atol=1e-6)
  bf16 = models.load(folder, dtype=jnp.bfloat16)
  assert bf16.language_model.embed_tokens.embedding.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(bf16(ids, None, pixels, [(2, 4, 4)], [1.0]), np.float32), expect, atol=0.1)


def test_checkpoint_errors_are_complete(tiny, tmp_path):
  from safetensors.torch import save_file

  hf, folder, _ = tiny
  with pytest.raises(models.CheckpointError, match="does not exist"):
    models.load(str(tmp_path / "nowhere"))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(models.CheckpointError, match="config.json"):
    models.load(str(empty))
  (empty / "config.json").write_text(open(os.path.join(folder, "config.json")).read())
  with pytest.raises(models.CheckpointError, match="no .safetensors"):
    models.load(str(empty))
  (empty / "model.safetensors").write_bytes(b"\x00garbage")
  with pytest.raises(models.CheckpointError, match="cannot read"):
    models.load(str(empty))
  broken = tmp_path / "broken"
  broken.mkdir()
  (broken / "config.json").write_text(open(os.path.join(folder, "config.json")).read())
  state = {k: v.contiguous() for k, v in hf.state_dict().items()}
  state["model.visual.blocks.0.norm1.bias"] = state.pop("model.visual.blocks.0.norm1.weight")  # renamed
  state["lm_head.weight"] = state["lm_head.weight"][:, :10].contiguous()  # misshapen
  # The vision MLP is zero-padded from 48 to 128 units, but only from its configured width.
  state["model.visual.blocks.1.mlp.gate_proj.weight"] = state["model.visual.blocks.1.mlp.gate_proj.weight"][:40]
  del state["model.language_model.norm.weight"]  # missing
  save_file(state, str(broken / "model.safetensors"))
  with pytest.raises(models.CheckpointError) as err:
    models.load(str(broken))
  message = str(err.value)
  assert "unexpected tensor 'model.visual.blocks.0.norm1.bias'" in message
  assert "misshapen tensor 'lm_head.weight'" in message
  assert "misshapen tensor 'model.visual.blocks.1.mlp.gate_proj.weight': (32, 40) in the file, (32, 48)" in message
  assert "missing part of visual.blocks.1.mlp.gate_up_proj.kernel (have parts [1])" in message
  assert "missing tensor for language_model.norm.weight" in message
  assert "missing tensor for visual.blocks.0.norm1.weight" in message
  assert "missing tensor for lm_head.kernel" in message
  (broken / "config.json").write_text("{not json")
  with pytest.raises(models.CheckpointError, match="not valid JSON"):
    models.load(str(broken))


def one_video_batch(seed: int, grid: list) -> VideoBatch:
  """A one-row batch: a random prompt around one random video of ``grid``."""
  ids, pixels = hf_tiny.random_video_inputs(np.random.default_rng(seed), grid)
  ids = np.asarray([ids])
  return VideoBatch(ids, np.ones_like(ids), pixels, tuple(grid), (1.0,))


def test_greedy_generation_matches_hf(tiny):
  hf, _, ours = tiny
  grid = [(3, 6, 8)]
  batch = one_video_batch(16, grid)
  ids, pixels = batch.input_ids, batch.pixel_values_videos
  stop = 56  # an EOS id this random model emits after a few tokens
  got = generate(ours, batch, SamplingConfig(max_new_tokens=10), eos_token_ids=[stop])
  positions, delta = rope_index(ids, tuple(grid), [1.0], None, ours.config)
  seq, pos, expect = torch.as_tensor(ids), torch.as_tensor(positions).long(), []
  for _ in range(10):  # HF with the same explicit positions, recomputing the whole prefix
    logits = hf_logits(hf, seq.numpy(), np.ones(seq.shape, np.int64), pixels, grid, pos.numpy())
    expect.append(int(logits[0, -1].argmax()))
    if expect[-1] == stop:
      break
    seq = torch.cat([seq, torch.tensor([[expect[-1]]])], 1)
    pos = torch.cat([pos, torch.full((3, 1, 1), seq.shape[1] - 1 + int(delta[0]))], 2)
  assert len(expect) > 3 and expect[-1] == stop and VIDEO not in expect  # stops on EOS after several tokens
  assert list(got.tokens[0]) == expect
  assert got.visual_tokens[0] == got.input_visual_tokens[0] == 36
  # Decoding several steps a call (a device-side loop) gives the same tokens and stops at the same EOS;
  # sampling draws the same numbers as one step a call.
  (embeds, positions_, mask), _ = llm_input(ours, batch)
  for sampling, eos in ((SamplingConfig(max_new_tokens=10), [stop]), (SamplingConfig(max_new_tokens=7), []),
                        (SamplingConfig(max_new_tokens=9, temperature=1.0, top_p=0.9, seed=3), [])):
    one, _ = Generator(ours, steps_per_call=None).generate(embeds, positions_, mask, sampling, eos)
    looped, _ = Generator(ours, steps_per_call=3).generate(embeds, positions_, mask, sampling, eos)
    np.testing.assert_array_equal(looped, one)
    assert one.shape[1] == (len(expect) if eos else sampling.max_new_tokens)


def test_compression_at_prefill(tiny):
  _, _, ours = tiny
  grid = [(4, 10, 12)]
  batch = one_video_batch(6, grid)
  ids = batch.input_ids
  plain = generate(ours, batch, SamplingConfig(max_new_tokens=5), eos_token_ids=[])
  same = generate(ours, batch, SamplingConfig(max_new_tokens=5), ov.OTTVidConfig(retention=1.0), eos_token_ids=[])
  np.testing.assert_array_equal(plain.tokens, same.tokens)
  assert same.visual_tokens[0] == 120 and same.llm_length == plain.llm_length

  cfg = ov.OTTVidConfig(retention=0.1)
  (embeds, positions, mask), plan = llm_input(ours, batch, cfg)
  positions, mask = np.asarray(positions), np.asarray(mask)
  full, _ = rope_index(ids, tuple(grid), [1.0], None, ours.config)
  video_slots = plan.video[0] >= 0
  assert (mask[0] & video_slots).sum() <= 12  # 10% of 120 video tokens
  assert plan.length == ids.shape[1] - 120 + ov.budget(cfg, 4, 30).slots
  # Text keeps its uncompressed positions; kept video tokens keep theirs.
  np.testing.assert_array_equal(positions[:, 0, ~video_slots], full[:, 0, ids[0] != VIDEO])
  video_ids = full[:, 0, ids[0] == VIDEO]  # [3, 120], raster order
  kept = positions[:, 0, video_slots & mask[0]]
  assert all(any((video_ids[:, j] == kept[:, i]).all() for j in range(120)) for i in range(kept.shape[1]))
  compressed = generate(ours, batch, SamplingConfig(max_new_tokens=5), cfg, eos_token_ids=[])
  assert compressed.visual_tokens[0] == 12 and compressed.tokens.shape == (1, 5)
  with pytest.raises(ValueError, match="context of 1024"):  # the tiny model's context
    generate(ours, batch, SamplingConfig(max_new_tokens=1000), eos_token_ids=[])


def test_shapes_of_the_7b_model():
  cfg = Qwen2_5_VLConfig.qwen2_5_vl_7b()
  model = jax.eval_shape(lambda: Qwen2_5_VL(cfg, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
  params = sum(x.size for x in jax.tree_util.tree_leaves(nnx.state(model)))
  assert 8.28e9 < params < 8.30e9  # Qwen2.5-VL-7B-Instruct has 8.29 B parameters
  grid = ((16, 32, 32),)  # 32 frames at 448 x 448: 16384 patches, 4096 video tokens
  ids = jax.ShapeDtypeStruct((1, 4096 + 60), jnp.int32)
  pixels = jax.ShapeDtypeStruct((16384, 1176), jnp.bfloat16)
  positions = jax.ShapeDtypeStruct((3, 1, 4156), jnp.int32)
  graphdef, state = nnx.split(model)
  out = jax.eval_shape(lambda s, i, p, x: nnx.merge(graphdef, s).forward(i, jnp.ones(i.shape, bool), p, x, grid)[0],
                       state, ids, positions, pixels)
  assert out.shape == (1, 4156, 152064) and out.dtype == jnp.bfloat16
  tokens = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s).visual(x, grid), state, pixels)
  assert tokens[0].shape == (4096, 3584) and tokens[1].shape == (4096,)


@pytest.mark.parametrize("name", ["visionzip", "flashvid"])
def test_peer_methods_at_prefill(tiny, name):
  """Any peer runs between the merger and the LLM; FlashVID's empty slots are masked."""
  from ottvid_jax.compressor import interface

  _, _, ours = tiny
  grid = [(4, 10, 12)]
  batch = one_video_batch(7, grid)
  cfg = interface.make(name, 0.25)
  (_, _, mask), plan = llm_input(ours, batch, cfg)
  video = plan.video[0] >= 0
  assert video.sum() == 30 and np.asarray(mask)[0][video].sum() <= 30
  result = generate(ours, batch, SamplingConfig(max_new_tokens=3), cfg, eos_token_ids=[])
  assert result.tokens.shape == (1, 3) and result.visual_tokens[0] == np.asarray(mask)[0][video].sum()
