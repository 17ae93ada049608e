"""Benchmark: the 7B backbones end to end, ottvid_jax next to transformers (PyTorch, sdpa).

    export XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_COMPILATION_CACHE_DIR=/tmp/cache
    python experiments/bench_backbones.py --side jax --out jax.json
    python experiments/bench_backbones.py --side jax --memory --out memory.json
    python experiments/bench_backbones.py --side torch --out torch.json
    python experiments/bench_backbones.py --report jax.json torch.json memory.json
    ... --model llava_ov    (32 frames, 6272 + 1 video tokens; transformers' LlavaOnevision)
    ... --model llava_video (64 frames, average 13 x 13 pooling, a newline per frame; ours only:
                             transformers cannot express this pooling)
    experiments/gpu_benchmarks.sh OUT qwen2_5_vl llava_ov llava_video   (all of it)

Random bf16 weights of the real 7B configuration; for Qwen2.5-VL 32 frames at 448 x 448
(16384 patches, 4096 video tokens) and a 60-token prompt around them; greedy
decoding. Measured (median of ``--repeats`` after warm-up, each timed region
ended by ``block_until_ready`` / ``torch.cuda.synchronize``): the vision tower,
the LLM prefill, one decode step, time to first token (vision + OTT-Vid + LLM
prefill + first token) and end to end with a 32-token answer, at retention
1.0, 0.25, 0.15 and 0.10 (ours; transformers runs uncompressed), and the
allocator's peak memory. Our retentions run from the smallest up, so the
cumulative peak after each is that retention's peak; it includes compile-time
autotuning buffers, which ``--memory`` (a second process whose programs all
come from the first one's ``JAX_COMPILATION_CACHE_DIR``) leaves out. Both sides
get their pixels already on the device in bf16; our random weights come from
``random_model`` (no initialisation spike). ``--compare-decoding`` also times
decoding one step a call, with and without CUDA graphs; decoding with XLA's attention
ops instead of the fused kernel is always timed beside it. ``--small`` shrinks the
model for a smoke run on a CPU.
"""

from __future__ import annotations

import argparse
import os
import json
import math
import statistics
import time
from typing import Optional

import numpy as np

RETENTIONS = (0.10, 0.15, 0.25, 1.0)
FRAMES, SIDE, TEXT, NEW_TOKENS = 32, 448, 60, 32


def median_s(fn, repeats: int) -> float:
  fn()
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def inputs(vocab: int, video_id: int, tokens: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  before = list(rng.integers(0, 1000, size=TEXT // 2))
  after = list(rng.integers(0, 1000, size=TEXT - TEXT // 2))
  ids = np.asarray([before + [video_id] * tokens + after], np.int32)
  return ids


def _jax_model_and_batch(args):
  """``(model, batch, generation module, tower)`` for ``args.model``; ``tower(pixels, saliency)`` queues the vision
  side as ``llm_input`` does."""
  import jax.numpy as jnp
  from flax import nnx

  from ottvid_jax.models.random_weights import random_model

  rng = np.random.default_rng(1)
  if args.model == "qwen2_5_vl":
    from ottvid_jax.models.qwen2_5_vl import Qwen2_5_VL, Qwen2_5_VLConfig
    from ottvid_jax.models.qwen2_5_vl import generation as gen

    cfg = Qwen2_5_VLConfig.qwen2_5_vl_7b() if not args.small else Qwen2_5_VLConfig.from_hf(_small_hf())
    frames, side = (FRAMES, SIDE) if not args.small else (4, 112)
    grid = ((frames // 2, side // 14, side // 14),)
    model = random_model(lambda: Qwen2_5_VL(cfg, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
    ids = inputs(cfg.text.vocab_size, cfg.video_token_id, grid[0][0] * grid[0][1] * grid[0][2] // 4)
    pixels = jnp.asarray(rng.normal(size=(grid[0][0] * grid[0][1] * grid[0][2], 1176)), jnp.bfloat16)
    batch = gen.VideoBatch(ids, np.ones_like(ids), pixels, grid, (1.0,))
    tower = lambda p, saliency: gen.video_features(model, p, grid, saliency)  # noqa: E731
    return model, batch, gen, tower
  from ottvid_jax.models.llava_onevision import LlavaConfig, LlavaOnevision
  from ottvid_jax.models.llava_onevision import generation as gen

  cfg = LlavaConfig.llava_onevision_7b() if args.model == "llava_ov" else LlavaConfig.llava_video_7b()
  frames = 32 if args.model == "llava_ov" else 64
  if args.small:
    cfg = LlavaConfig.from_hf(_small_llava_hf())
    frames = 4
  model = random_model(lambda: LlavaOnevision(cfg, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
  size = cfg.vision.image_size
  ids = inputs(cfg.text.vocab_size, cfg.video_token_id, cfg.video_tokens(frames))
  pixels = jnp.asarray(rng.normal(size=(frames, 3, size, size)), jnp.bfloat16)
  batch = gen.LlavaBatch(ids, np.ones_like(ids), pixels, (frames,))
  tower = lambda p, saliency: gen.video_features(model, p, saliency)  # noqa: E731
  return model, batch, gen, tower


def run_jax(args) -> dict:
  import jax
  import jax.numpy as jnp
  from flax import nnx

  import ottvid_jax as ov
  from ottvid_jax.models.generate import Generator, SamplingConfig, generator_for

  if args.memory:
    return memory_pass(args)
  start = time.perf_counter()
  model, batch, gen, tower = _jax_model_and_batch(args)
  jax.block_until_ready(nnx.state(model))
  init_s = time.perf_counter() - start
  generator = generator_for(model)
  # Decoding with XLA's attention ops instead of the fused kernel (decode_attention), and with --compare-decoding
  # also one step a call, kernel by kernel or in CUDA graphs (one or three more compiles a retention).
  variants = {"decode_xla_attention_ms": Generator(model, decode_kernel="xla")}
  if args.compare_decoding:
    variants.update({"decode_one_step_per_call_ms": Generator(model, steps_per_call=None),
                     "decode_one_step_graphs_ms": Generator(model, steps_per_call=None, step_graphs=True)})
  device = jax.devices()[0]
  out = {"device": getattr(device, "device_kind", str(device)), "jax": jax.__version__, "init_s": init_s,
         "model": args.model, "decode_kernel": generator.decode_kernel, "rows": []}
  px = batch.pixel_values_videos  # the tower's programs as llm_input queues them (only their parameters passed)
  out["vision_ms"] = 1e3 * median_s(lambda: jax.block_until_ready(tower(px, False)), args.repeats)
  out["vision_saliency_ms"] = 1e3 * median_s(lambda: jax.block_until_ready(tower(px, True)), args.repeats)
  for r in RETENTIONS:
    compression = None if r == 1.0 else ov.OTTVidConfig(retention=r)
    (embeds, positions, mask), plan = gen.llm_input(model, batch, compression)
    slots = generator.slots(plan.length, NEW_TOKENS)  # enough for every decoding variant
    mrope = positions.ndim == 3

    def prefill_only():
      jax.block_until_ready(generator.prefill(embeds, positions, mask, slots, True))

    def ttft():
      (e, pos, m), _ = gen.llm_input(model, batch, compression)
      logits, *_ = generator.prefill(e, pos, m, slots, True)
      jax.block_until_ready(jnp.argmax(logits, -1))

    def prefilled():
      logits, cache, kv_mask, delta = generator.prefill(embeds, positions, mask, slots, True)
      return jax.block_until_ready((jnp.argmax(logits, -1).astype(jnp.int32), cache, kv_mask, delta))

    def decode_per_token(decoder=generator) -> float:
      """A 32-token answer's decoding (steps queued back to back, as ``generate`` runs them), per token."""
      token, cache, kv_mask, delta = prefilled()
      start = time.perf_counter()
      decoder.decode(token, cache, kv_mask, delta, plan.length, SamplingConfig(max_new_tokens=NEW_TOKENS), [], mrope)
      return (time.perf_counter() - start) / (NEW_TOKENS - 1)

    state: dict = {}  # the carried decoding state of one_step, made on its first call

    def one_step():
      """One step on its own, waited for (the latency of a single step, host work included)."""
      if not state:
        token, state["cache"], state["kv_mask"], state["delta"] = prefilled()
        state.update(token=token, index=jnp.asarray(plan.length, jnp.int32), finished=jnp.zeros_like(token, bool),
                     key=jax.random.key(0))
      t, state["cache"], state["finished"], state["key"], _ = generator.step_program(
          generator.leaves, state["cache"], state["kv_mask"], state["token"], state["index"], state["delta"],
          state["finished"], state["key"], jnp.asarray([-1], jnp.int32), mrope=mrope, temperature=0.0, top_p=1.0)
      jax.block_until_ready(t)

    def end_to_end():
      gen.generate(model, batch, SamplingConfig(max_new_tokens=NEW_TOKENS), compression, eos_token_ids=[])

    row = {"retention": r, "llm_tokens": plan.length, "visual_tokens": int(np.asarray(mask).sum()) - TEXT,
           "prefill_ms": 1e3 * median_s(prefill_only, args.repeats),
           "decode_step_ms": 1e3 * statistics.median([decode_per_token() for _ in range(args.repeats + 1)][1:]),
           "ttft_ms": 1e3 * median_s(ttft, args.repeats),
           "end_to_end_ms": 1e3 * median_s(end_to_end, max(3, args.repeats // 3))}
    for name, decoder in variants.items():
      row[name] = 1e3 * statistics.median([decode_per_token(decoder) for _ in range(args.repeats + 1)][1:])
    if args.compare_decoding:
      row["single_step_ms"] = 1e3 * median_s(one_step, 5 * args.repeats)
    stats = device.memory_stats() or {}
    row["peak_gib"] = stats.get("peak_bytes_in_use", float("nan")) / 2 ** 30
    out["rows"].append(row)
    print(row, flush=True)
  return out


def memory_pass(args) -> dict:
  """The allocator's peak of each retention's answer (smallest first), in a process whose programs all come
  from the persistent compilation cache that the timed run filled: no compile-time autotuning buffers
  (XLA's GEMM autotuner allocates operand-sized scratch, 1 GiB for the LM head) count."""
  import jax
  from flax import nnx

  import ottvid_jax as ov
  from ottvid_jax.models.generate import SamplingConfig

  if not jax.config.jax_compilation_cache_dir:
    raise SystemExit("--memory needs the compilation cache of a timed run (JAX_COMPILATION_CACHE_DIR)")
  model, batch, gen, _ = _jax_model_and_batch(args)
  jax.block_until_ready(nnx.state(model))
  device = jax.devices()[0]
  peak = lambda: (device.memory_stats() or {}).get("peak_bytes_in_use", float("nan")) / 2 ** 30  # noqa: E731
  out = {"device": getattr(device, "device_kind", str(device)), "model": args.model, "weights_gib": peak(), "rows": []}
  for r in RETENTIONS:
    compression = None if r == 1.0 else ov.OTTVidConfig(retention=r)
    gen.generate(model, batch, SamplingConfig(max_new_tokens=NEW_TOKENS), compression, eos_token_ids=[])
    out["rows"].append({"retention": r, "peak_gib": peak()})
    print(out["rows"][-1], flush=True)
  return out


def _small_llava_hf() -> dict:
  return {"vision_config": {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                            "num_attention_heads": 2, "image_size": 70, "patch_size": 14},
          "text_config": {"vocab_size": 1024, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2},
          "video_token_index": 1000, "image_token_index": 1001}


def _small_hf() -> dict:
  return {"vision_config": {"depth": 2, "hidden_size": 64, "intermediate_size": 96, "num_heads": 2,
                            "out_hidden_size": 128, "fullatt_block_indexes": [1], "tokens_per_second": 2},
          "text_config": {"vocab_size": 1024, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2,
                          "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]}},
          "video_token_id": 1000, "image_token_id": 1001, "vision_start_token_id": 1002,
          "vision_end_token_id": 1003, "tie_word_embeddings": False}


def _time_torch(model, call: dict, vision, prefill: dict, args, init_s: float) -> dict:
  """transformers' timings: ``vision()``, the LM on ``prefill`` embeddings, ``model(**call)`` to the first
  token, and ``model.generate(**call)`` for 32 tokens (decode step derived from the last two)."""
  import torch

  device = call["input_ids"].device.type

  def timed(fn, repeats):
    def run():
      fn()
      if device == "cuda":
        torch.cuda.synchronize()
    return 1e3 * median_s(run, repeats)

  out = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
         "init_s": init_s, "model": args.model, "llm_tokens": int(call["input_ids"].shape[1])}
  with torch.no_grad():
    out["vision_ms"] = timed(vision, args.repeats)
    out["prefill_ms"] = timed(lambda: model.model.language_model(**prefill, use_cache=True), args.repeats)
    if device == "cuda":
      torch.cuda.reset_peak_memory_stats()
    out["ttft_ms"] = timed(lambda: model(**call, logits_to_keep=1), args.repeats)
    out["end_to_end_ms"] = timed(lambda: model.generate(**call, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                                        do_sample=False), max(3, args.repeats // 3))
  out["decode_step_ms"] = (out["end_to_end_ms"] - out["ttft_ms"]) / (NEW_TOKENS - 1)
  if device == "cuda":
    out["peak_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
  print(out, flush=True)
  return out


def _torch_model(model_class, cfg):
  import torch

  cfg._attn_implementation = "sdpa"  # pylint: disable=protected-access
  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.manual_seed(0)
  start = time.perf_counter()
  try:  # allocate without transformers' slow initialisers, then fill with random normals on the device
    from transformers.initialization import no_init_weights
  except ImportError:
    from transformers.modeling_utils import no_init_weights
  torch.set_default_dtype(torch.bfloat16)
  with torch.device(device), no_init_weights():
    model = model_class(cfg).eval()
  torch.set_default_dtype(torch.float32)
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.normal_(0.0, 0.02)
  return model, device, time.perf_counter() - start


def run_torch(args) -> dict:
  if args.model == "llava_ov":
    return run_torch_llava(args)
  if args.model != "qwen2_5_vl":
    raise SystemExit(f"transformers has no baseline for {args.model}")
  import torch
  from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

  if args.small:
    cfg = Qwen2_5_VLConfig(**_small_hf())
  else:
    cfg = Qwen2_5_VLConfig(
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, window_size=112),
        text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4,
                         rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[16, 24, 24])),
        video_token_id=151656, image_token_id=151655, vision_start_token_id=151652, vision_end_token_id=151653,
        tie_word_embeddings=False)
  model, device, init_s = _torch_model(Qwen2_5_VLForConditionalGeneration, cfg)
  frames, side = (FRAMES, SIDE) if not args.small else (4, 112)
  grid = torch.tensor([[frames // 2, side // 14, side // 14]], device=device)
  ids = torch.as_tensor(inputs(cfg.text_config.vocab_size, cfg.video_token_id, int(grid.prod()) // 4),
                        device=device).long()
  mask = torch.ones_like(ids)
  tt = (ids == cfg.video_token_id).int() * 2
  pixels = torch.as_tensor(np.random.default_rng(1).normal(size=(int(grid.prod()), 1176)),
                           device=device).to(torch.bfloat16)
  call = dict(input_ids=ids, attention_mask=mask, pixel_values_videos=pixels, video_grid_thw=grid,
              mm_token_type_ids=tt, second_per_grid_ts=torch.tensor([1.0]))
  with torch.no_grad():
    embeds = model.model.get_input_embeddings()(ids)
    video = model.model.visual(pixels, grid_thw=grid).pooler_output
    embeds = embeds.masked_scatter((ids == cfg.video_token_id)[..., None].expand_as(embeds), video)
    position_ids, _ = model.model.get_rope_index(ids, tt, None, grid, torch.tensor([1.0]), mask)
  prefill = dict(inputs_embeds=embeds, position_ids=position_ids, attention_mask=mask)
  return _time_torch(model, call, lambda: model.model.visual(pixels, grid_thw=grid), prefill, args, init_s)


def run_torch_llava(args) -> dict:
  import torch
  from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

  if args.small:
    cfg = LlavaOnevisionConfig(**_small_llava_hf())
    frames = 4
  else:
    cfg = LlavaOnevisionConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                           num_hidden_layers=26, num_attention_heads=16, image_size=384, patch_size=14,
                           vision_use_head=False),
        text_config=dict(model_type="qwen2", vocab_size=152128, hidden_size=3584, intermediate_size=18944,
                         num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                         rope_parameters=dict(rope_type="default", rope_theta=1e6)),
        vision_feature_layer=-1, vision_feature_select_strategy="full", tie_word_embeddings=False)
    frames = 32
  model, device, init_s = _torch_model(LlavaOnevisionForConditionalGeneration, cfg)
  size = cfg.vision_config.image_size
  tokens = frames * math.ceil(size // 14 / 2) ** 2 + 1
  ids = torch.as_tensor(inputs(cfg.text_config.vocab_size, cfg.video_token_index, tokens), device=device).long()
  mask = torch.ones_like(ids)
  pixels = torch.as_tensor(np.random.default_rng(1).normal(size=(1, frames, 3, size, size)),
                           device=device).to(torch.bfloat16)
  call = dict(input_ids=ids, attention_mask=mask, pixel_values_videos=pixels)
  with torch.no_grad():
    embeds = model.model.get_input_embeddings()(ids)
    video = model.model.get_video_features(pixels).pooler_output
    video = video.reshape(-1, video.shape[-1])
    if video.shape[0] == tokens - 1:  # transformers 5 adds the trailing newline in forward, not here
      video = torch.cat([video, model.model.image_newline[None].to(video.dtype)])
    embeds = embeds.masked_scatter((ids == cfg.video_token_index)[..., None].expand_as(embeds), video)
  prefill = dict(inputs_embeds=embeds, attention_mask=mask)
  return _time_torch(model, call, lambda: model.model.get_video_features(pixels), prefill, args, init_s)


def report(jax_out: dict, torch_out: Optional[dict], memory_out: Optional[dict] = None) -> str:
  """The markdown table of one model (``torch_out`` may be None: no baseline; ``memory_out``: a ``--memory``
  pass, whose peaks replace the timed run's, which include compile-time autotuning scratch)."""
  steady = {r["retention"]: r["peak_gib"] for r in (memory_out or {}).get("rows", [])}
  head = f"{jax_out.get('model', 'qwen2_5_vl')}: ottvid_jax (jax {jax_out.get('jax')}) on {jax_out['device']}"
  if torch_out:
    head += f"; transformers (torch {torch_out.get('torch')}, sdpa) on {torch_out['device']}"
  lines = [head + ". Times in ms, memory in GiB.", "",
           "| run | LLM tokens | vision tower | LLM prefill | decode step | time to first token | end to end (32 tokens) "
           "| peak memory |", "|---|---|---|---|---|---|---|---|"]
  if torch_out:
    t = torch_out
    lines.append(f"| transformers, uncompressed | {t['llm_tokens']} | {t['vision_ms']:.1f} | {t['prefill_ms']:.1f} | "
                 f"{t['decode_step_ms']:.2f} (from end to end) | {t['ttft_ms']:.1f} | {t['end_to_end_ms']:.1f} | "
                 f"{t.get('peak_gib', float('nan')):.2f} |")
  for r in sorted(jax_out["rows"], key=lambda r: -r["retention"]):
    other = [f"{r[k]:.2f} {name}" for k, name in (("decode_xla_attention_ms", "XLA's attention"),
                                                 ("decode_one_step_per_call_ms", "one step a call"),
                                                 ("decode_one_step_graphs_ms", "one step a call in graphs"))
             if k in r]
    lines.append(f"| ottvid_jax, r = {r['retention']:.2f} | {r['llm_tokens']} | {jax_out['vision_ms']:.1f} "
                 f"(+saliency {jax_out['vision_saliency_ms']:.1f}) | {r['prefill_ms']:.1f} | "
                 f"{r['decode_step_ms']:.2f}{' (' + '; '.join(other) + ')' if other else ''} | {r['ttft_ms']:.1f} | "
                 f"{r['end_to_end_ms']:.1f} | {steady.get(r['retention'], r['peak_gib']):.2f} |")
  base = next((r for r in jax_out["rows"] if r["retention"] == 1.0), None)
  ten = next((r for r in jax_out["rows"] if r["retention"] == 0.10), None)
  if base and ten:
    lines += ["", f"Time to first token, r = 0.10 vs 1.0: {base['ttft_ms'] / ten['ttft_ms']:.2f}x faster."]
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--side", choices=("jax", "torch"))
  parser.add_argument("--model", choices=("qwen2_5_vl", "llava_ov", "llava_video"), default="qwen2_5_vl")
  parser.add_argument("--out")
  parser.add_argument("--report", nargs="+", metavar="JSON",
                      help="JAX_JSON TORCH_JSON [MEMORY_JSON]: print the table (missing files are skipped)")
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--small", action="store_true")
  parser.add_argument("--compare-decoding", action="store_true",
                      help="also time decoding one step a call, with and without CUDA graphs")
  parser.add_argument("--memory", action="store_true",
                      help="only the peak memory of each retention, from a warm compilation cache (see memory_pass)")
  args = parser.parse_args()
  if args.report:
    jax_out, torch_out, memory_out = (json.load(open(p)) if p and os.path.isfile(p) else None
                                      for p in (list(args.report) + [None, None])[:3])
    print(report(jax_out, torch_out, memory_out))
    return
  result = run_jax(args) if args.side == "jax" else run_torch(args)
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
