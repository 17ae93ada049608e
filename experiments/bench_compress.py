"""Benchmark: median time of ``ov.compress`` next to the authors' PyTorch code.

    python experiments/bench_compress.py                      # every shape, this machine's default device
    OTTVID_AUTHORS_DIR=/path/to/OTT-Vid python experiments/bench_compress.py --repeats 50

``OTTVID_AUTHORS_DIR`` points at a checkout of ``minseokii/OTT-Vid`` (the folder
that holds the ``ottvid`` package; never committed here). Without it only our
side is timed. Both sides get the same bf16 features and saliency, at the paper
setting; the script checks that both keep the same anchors and prints one
markdown table (the one in ``docs/PERFORMANCE.md``).

Timing: a jitted ``compress`` per shape, 3 warm-up calls, then ``--repeats``
calls rotating over 3 input sets, each ended by ``block_until_ready``; the
authors' code the same way with ``torch.cuda.synchronize``. Medians.
``--profile`` adds rows that isolate Sinkhorn (10 instead of 200 updates) and
the selection loop. On a GPU, where the Sinkhorn updates run as one fused kernel
by default, the method with ott-jax's solver is timed beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import ottvid_jax as ov

SHAPES = {  # name: (T, H, W, D)
    "llava-ov 32x14x14": (32, 14, 14, 3584),
    "qwen2.5-vl 16x13x23": (16, 13, 23, 3584),
    "llava-video 64x13x13": (64, 13, 13, 3584),
}


def make_inputs(seed: int, frames: int, height: int, width: int, dim: int):
  """Redundant video-like features (a slowly drifting scene plus noise), bf16."""
  rng = np.random.default_rng(seed)
  n = height * width
  scene = rng.normal(size=(1, n, dim)).astype(np.float32)
  drift = np.cumsum(rng.normal(size=(frames, 1, 1)) * 0.05, axis=0).astype(np.float32)
  features = scene * (1 + drift) + 0.8 * rng.normal(size=(frames, n, dim)).astype(np.float32)
  saliency = rng.gamma(0.5, size=(frames, n)).astype(np.float32)
  return features, saliency


def median_ms(fn, inputs, repeats: int, sync) -> float:
  for args in inputs[:3]:
    sync(fn(*args))
  times = []
  for i in range(repeats):
    args = inputs[i % len(inputs)]
    start = time.perf_counter()
    sync(fn(*args))
    times.append((time.perf_counter() - start) * 1e3)
  return statistics.median(times)


def ours(frames, height, width, dim, raw, repeats, config):
  fn = jax.jit(functools.partial(ov.compress, grid_hw=(height, width)))
  inputs = [(jnp.asarray(f, jnp.bfloat16), jnp.asarray(s), config) for f, s in raw]
  ms = median_ms(fn, inputs, repeats, jax.block_until_ready)
  out = fn(*inputs[0])
  index = np.asarray(out.index)[np.asarray(out.valid)]
  return ms, index


def selection_only(frames, height, width, dim, raw, repeats, config):
  keep = ov.budget(config, frames, height * width).keep

  @jax.jit
  def fn(f, s):
    sim = jax.vmap(ov.cosine_similarity)(f)
    return jax.vmap(ov.select_tokens, in_axes=(0, 0, None))(sim, ov.normalize_saliency(s), keep)

  inputs = [(jnp.asarray(f, jnp.bfloat16), jnp.asarray(s)) for f, s in raw]
  return median_ms(fn, inputs, repeats, jax.block_until_ready)


def load_authors(path: str):
  """Imports the authors' pipeline functions from a checkout (read, never copied)."""
  sys.path.insert(0, path)
  try:  # their module imports names that newer transformers releases dropped
    import transformers.models.qwen2_5_vl.modeling_qwen2_5_vl as hf_qwen
    for name in ("apply_multimodal_rotary_pos_emb", "apply_rotary_pos_emb_vision", "eager_attention_forward",
                 "Qwen2_5_VLModelOutputWithPast"):
      if not hasattr(hf_qwen, name):
        setattr(hf_qwen, name, None)
  except ImportError:
    pass
  from ottvid.backbones.qwen2_5_vl import _run_spatial, _run_temporal  # pylint: disable=import-error
  from ottvid.config import PipelineConfig  # pylint: disable=import-error
  return _run_spatial, _run_temporal, PipelineConfig


def theirs(frames, height, width, dim, raw, repeats, config, authors):
  import torch  # pylint: disable=import-outside-toplevel

  run_spatial, run_temporal, pipeline_config = authors
  device = "cuda" if torch.cuda.is_available() else "cpu"
  cfg = pipeline_config(
      total_retention_ratio=config.retention, temporal_share=config.temporal_share, enable_temporal=True,
      ot_budget_temperature=float(config.budget_tau), ot_sinkhorn_eps=float(config.epsilon),
      ot_sinkhorn_iters=config.sinkhorn_iters, ot_mass_tau=float(config.mass_tau),
      ot_cost_threshold=float(config.cost_threshold))
  # Qwen2.5-VL layout: a (T, 2H, 2W) patch grid merged 2x2 into H x W tokens.
  grid = torch.tensor([[frames, 2 * height, 2 * width]], device=device)

  def fn(emb, sal):
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():  # they print per call
      kept, keep_index = run_spatial(emb, sal, grid, 2, cfg)
      return run_temporal(kept, keep_index, grid, 2, cfg, pre_video_embeds=emb, saliency=sal)

  def sync(_):
    if device == "cuda":
      torch.cuda.synchronize()

  inputs = [(torch.from_numpy(f.reshape(frames * height * width, dim)).to(device, torch.bfloat16),
             torch.from_numpy(s).to(device)) for f, s in raw]
  ms = median_ms(fn, inputs, repeats, sync)
  _, index, _ = fn(*inputs[0])
  # Their alpha normalises the features in the input dtype (bf16 here), the
  # only step not upcast to float32; with it upcast the decisions are ours.
  import ottvid.temporal.ot_merge as ot_merge  # pylint: disable=import-error,import-outside-toplevel
  original = ot_merge.compute_pair_alpha_from_pre
  ot_merge.compute_pair_alpha_from_pre = lambda pre_features, **kw: original(pre_features.float(), **kw)
  try:
    _, index_f32_alpha, _ = fn(*inputs[0])
  finally:
    ot_merge.compute_pair_alpha_from_pre = original
  return ms, index.cpu().numpy(), index_f32_alpha.cpu().numpy()


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=30)
  parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
  parser.add_argument("--authors", default=os.environ.get("OTTVID_AUTHORS_DIR"))
  parser.add_argument("--profile", action="store_true", help="also time Sinkhorn-light and selection-only runs")
  args = parser.parse_args(argv)

  config = ov.OTTVidConfig()  # the paper setting
  authors = load_authors(args.authors) if args.authors else None
  device = jax.devices()[0]
  print(f"# jax {jax.__version__} on {device.platform}: {getattr(device, 'device_kind', device)}")
  if authors:
    import torch  # pylint: disable=import-outside-toplevel
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"# torch {torch.__version__} on {name}")
  rows = []
  for name in args.shapes:
    t, h, w, d = SHAPES[name]
    raw = [make_inputs(seed, t, h, w, d) for seed in range(3)]
    ms, index = ours(t, h, w, d, raw, args.repeats, config)
    row = {"shape": f"{name} x {d}", "ours": ms}
    if config.sinkhorn_solver is ov.SinkhornSolver.AUTO and jax.default_backend() == "gpu":
      ott = config.replace(sinkhorn_solver=ov.SinkhornSolver.OTT)
      row["ours, ott-jax Sinkhorn"], ott_index = ours(t, h, w, d, raw, args.repeats, ott)
      row["same anchors as ott-jax"] = bool(np.array_equal(index, ott_index))
    if args.profile:
      row["ours, 10 Sinkhorn updates"] = ours(t, h, w, d, raw, args.repeats, config.replace(sinkhorn_iters=10))[0]
      row["selection only"] = selection_only(t, h, w, d, raw, args.repeats, config)
    if authors:
      their_ms, their_index, their_index_f32_alpha = theirs(t, h, w, d, raw, max(5, args.repeats // 3), config, authors)
      row["authors"] = their_ms
      row["speed-up"] = their_ms / ms
      row["same anchors"] = bool(np.array_equal(index, their_index))
      row["same anchors, their alpha in f32"] = bool(np.array_equal(index, their_index_f32_alpha))
    rows.append(row)
    print(row, flush=True)
  keys = list(dict.fromkeys(k for r in rows for k in r))
  print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
  for r in rows:
    cells = [f"{r[k]:.2f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys]
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
  main()
