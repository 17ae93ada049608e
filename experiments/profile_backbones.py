"""Where a backbone's time goes on the GPU: kernels per phase, from JAX's profiler.

    XLA_PYTHON_CLIENT_PREALLOCATE=false python experiments/profile_backbones.py --model qwen2_5_vl --out DIR

The benchmark's setting (``bench_backbones.py``: random bf16 7B weights, its inputs) with each phase
(vision tower, vision + OTT-Vid + assembly, LLM prefill, time to first token, one decoding program of
``steps_per_call`` steps) jitted on its own, warmed up,
then traced for ``--calls`` calls. For each phase it prints the wall time a call, the GPU's busy time
(the union of kernel intervals), its idle time between kernels and the longest such gaps, the kernels
launched, the temporary memory XLA reserves for the prefill (``memory_analysis``), the allocator's peak so far, and the
kernels that take the time, grouped by name with their numeric suffixes removed. ``--out`` also keeps each
phase's Perfetto trace.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script from anywhere
from experiments.bench_backbones import NEW_TOKENS, _jax_model_and_batch  # noqa: E402

CATEGORIES = (("matmul", r"gemm|gemv|xmma|nvjet|cutlass|matmul|cublas|dot"),
              ("attention", r"cudnn|fmha|flash|attn|sdpa"),
              ("copy", r"memcpy|memset|copy"),
              ("fusion", r"."))


def _kernel_events(trace_dir: str):
  """``[(name, start_us, duration_us)]`` of the GPU kernels in a Perfetto trace written by ``jax.profiler``."""
  path = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)[0]
  with gzip.open(path) as f:
    events = json.load(f)["traceEvents"]
  gpu = {e["pid"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"
         and "GPU" in str(e["args"].get("name", ""))}
  streams = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e["pid"] in gpu and str(e["args"].get("name", "")).startswith("Stream")}
  if not streams:  # say what the trace holds instead
    names = {(e["pid"], e.get("tid")): e["args"].get("name") for e in events if e.get("ph") == "M"
             and e.get("name") in ("process_name", "thread_name")}
    print(f"   (no GPU stream in the trace; its processes and threads: {sorted(set(map(str, names.values())))[:40]})")
  return [(e["name"], float(e["ts"]), float(e["dur"])) for e in events
          if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in streams], path


def _busy_us(kernels) -> float:
  """The union of the kernels' intervals (overlapping streams counted once)."""
  total, end = 0.0, -1.0
  for _, start, dur in sorted(kernels, key=lambda k: k[1]):
    stop = start + dur
    if stop > end:
      total += stop - max(start, end)
      end = stop
  return total


def _gaps(kernels, calls: int, top: int = 6) -> dict:
  """Where the GPU idles inside a call: the idle time between kernels (the busy intervals' union) that is not the
  host's pause between calls (the ``calls - 1`` longest gaps), a call's share of it, and the ``top`` longest with the
  kernels before and after them."""
  spans, end, last = [], -1.0, None
  for name, start, dur in sorted(kernels, key=lambda k: k[1]):
    if end >= 0 and start > end:
      spans.append((start - end, last, name))
    if start + dur > end:
      end, last = start + dur, name
  spans.sort(key=lambda g: -g[0])
  inside = spans[calls - 1:]
  return {"idle_ms": sum(g[0] for g in inside) / calls / 1e3,
          "longest_gaps": [(round(us, 1), _group(before), _group(after)) for us, before, after in inside[:top]]}


def _group(name: str) -> str:
  return re.sub(r"([._]\d+)+$", "", name)[:90]


def profile(name: str, fn, calls: int, out_dir, memory) -> dict:
  """Warms ``fn`` up, traces ``calls`` calls and prints the phase's kernel table; ``out_dir``: keep the trace."""
  import jax

  fn()
  fn()
  walls = []
  with tempfile.TemporaryDirectory() as tmp:
    with jax.profiler.trace(tmp, create_perfetto_trace=True):
      for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - start)
    kernels, path = _kernel_events(tmp)
    if out_dir:
      shutil.copy(path, os.path.join(out_dir, re.sub(r"\W+", "_", name) + ".json.gz"))
  groups = collections.defaultdict(lambda: [0, 0.0])
  for kname, _, dur in kernels:
    g = groups[_group(kname)]
    g[0] += 1
    g[1] += dur
  categories = collections.Counter()
  for g, (_, us) in groups.items():
    categories[next(c for c, pattern in CATEGORIES if re.search(pattern, g, re.I))] += us / calls
  row = {"phase": name, "wall_ms": 1e3 * float(np.median(walls)), "busy_ms": _busy_us(kernels) / calls / 1e3,
         "kernels": len(kernels) / calls, "categories_ms": {c: us / 1e3 for c, us in categories.items()},
         "top": [(g, n / calls, us / calls) for g, (n, us) in sorted(groups.items(), key=lambda kv: -kv[1][1])[:18]],
         **_gaps(kernels, calls), **memory()}
  print(f"\n## {name}: wall {row['wall_ms']:.2f} ms a call, GPU busy {row['busy_ms']:.2f} ms, "
        f"{row['kernels']:.0f} kernels, peak so far {row['peak_gib']:.2f} GiB")
  print("   by category (ms): " + ", ".join(f"{c} {ms:.2f}" for c, ms in row["categories_ms"].items()))
  print(f"   idle between kernels: {row['idle_ms']:.2f} ms a call; longest (us: kernel before -> kernel after): "
        + "; ".join(f"{us} {a} -> {b}" for us, a, b in row["longest_gaps"]))
  print("   | kernel | launches a call | us a call | us a launch |")
  for g, n, us in row["top"]:
    print(f"   | {g} | {n:.0f} | {us:.0f} | {us / max(n, 1):.1f} |")
  return row


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", choices=("qwen2_5_vl", "llava_ov", "llava_video"), default="qwen2_5_vl")
  parser.add_argument("--calls", type=int, default=3)
  parser.add_argument("--out", help="a folder for the JSON summary")
  parser.add_argument("--traces", default="", help="phases whose Perfetto traces are kept in --out, e.g. decode,vision")
  parser.add_argument("--small", action="store_true")
  parser.add_argument("--phases", default="vision,saliency,input,prefill,ttft,decode")
  args = parser.parse_args()
  import jax
  import jax.numpy as jnp
  from flax import nnx

  import ottvid_jax as ov
  from ottvid_jax.models.generate import generator_for

  if args.out:
    os.makedirs(args.out, exist_ok=True)
  device = jax.devices()[0]

  def memory() -> dict:
    stats = device.memory_stats() or {}
    return {"peak_gib": stats.get("peak_bytes_in_use", float("nan")) / 2 ** 30,
            "in_use_gib": stats.get("bytes_in_use", float("nan")) / 2 ** 30}

  start = time.perf_counter()
  model, batch, gen, tower = _jax_model_and_batch(args)
  jax.block_until_ready(nnx.state(model))
  print(f"{device.device_kind}, jax {jax.__version__}; {args.model} weights in {time.perf_counter() - start:.1f} s; "
        f"memory {memory()}", flush=True)
  generator = generator_for(model)
  phases = args.phases.split(",")
  keep = lambda phase: args.out if phase in args.traces.split(",") else None  # noqa: E731
  rows = []

  def temp_gib(jitted, *xs, **kw) -> float:
    analysis = jitted.lower(*xs, **kw).compile().memory_analysis()
    return getattr(analysis, "temp_size_in_bytes", float("nan")) / 2 ** 30

  px = batch.pixel_values_videos
  for phase in ("vision", "saliency"):
    if phase in phases:  # the tower's programs as llm_input queues them
      rows.append(profile(f"{phase}: vision tower" + (" + saliency" if phase == "saliency" else ""),
                          lambda phase=phase: tower(px, phase == "saliency"), args.calls, keep(phase), memory))
  for r in (0.1, 1.0):
    compression = None if r == 1.0 else ov.OTTVidConfig(retention=r)
    (embeds, positions, mask), plan = gen.llm_input(model, batch, compression)
    slots = generator.slots(plan.length, NEW_TOKENS)
    if "input" in phases:
      rows.append(profile(f"input r={r}: vision + compression + assembly ({plan.length} LLM tokens)",
                          lambda: gen.llm_input(model, batch, compression)[0], args.calls, keep("input"), memory))
    if "prefill" in phases:
      rows.append(profile(f"prefill r={r} ({plan.length} tokens)",
                          lambda: generator.prefill(embeds, positions, mask, slots, True)[0], args.calls,
                          keep("prefill"), memory))
      rows[-1]["temp_gib"] = temp_gib(generator.prefill_program, generator.leaves, embeds, positions, mask, slots=slots, dense=True)
    if "ttft" in phases:
      def first_token():
        (e, pos, m), _ = gen.llm_input(model, batch, compression)
        return jnp.argmax(generator.prefill(e, pos, m, slots, True)[0], -1)

      rows.append(profile(f"ttft r={r}: host preparation to the first token ({plan.length} LLM tokens)", first_token,
                          args.calls, keep("ttft"), memory))
    if "decode" in phases and r == 1.0:
      logits, cache, kv_mask, delta = generator.prefill(embeds, positions, mask, slots, True)
      carry = {"token": jnp.argmax(logits, -1).astype(jnp.int32), "cache": cache,
               "index": jnp.asarray(plan.length, jnp.int32), "key": jax.random.key(0)}
      carry["finished"] = jnp.zeros_like(carry["token"], bool)

      steps = generator.steps_per_call or 1

      def step():
        """One decoding program as ``generate`` runs it (``steps`` steps; later calls write the last cache slot)."""
        kw = dict(mrope=positions.ndim == 3, temperature=0.0, top_p=1.0)
        args_ = (generator.leaves, carry["cache"], kv_mask, carry["token"], carry["index"], delta, carry["finished"],
                 carry["key"], jnp.asarray([-1], jnp.int32))
        if generator.steps_per_call:
          carry["cache"], token, _, carry["finished"], carry["key"], _, _ = generator.steps_program(*args_, steps=steps, **kw)
        else:
          token, carry["cache"], carry["finished"], carry["key"], _ = generator.step_program(*args_, **kw)
        return token

      rows.append(profile(f"decode, {steps} steps a call (cache of {slots} slots)", step, 5 * args.calls,
                          keep("decode"), memory))
  if args.out:
    with open(os.path.join(args.out, f"profile_{args.model}.json"), "w") as f:
      json.dump({"device": device.device_kind, "jax": jax.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
