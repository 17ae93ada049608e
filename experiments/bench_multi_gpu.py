"""Benchmark: Qwen2.5-VL-7B's LLM tensor-parallel over 1, 2, ... local devices.

    python experiments/bench_multi_gpu.py --devices 1,2 --out multi.json      # GPUs
    XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python experiments/bench_multi_gpu.py --small --devices 1,2            # a CPU smoke run

Random bf16 weights of the real configuration (``random_model``), placed by
``sharding.tensor_parallel`` over the first n devices (n = 1: one device, unsharded);
for each prompt length, the LLM prefill of random input embeddings up to the last
position's logits and the decoding of a 32-token answer (8 steps a call, XLA's attention
ops at every device count, so that only the sharding differs), medians of ``--repeats``
after warm-up, and the largest logit difference from one device's run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import numpy as np

from experiments.bench_backbones import NEW_TOKENS, median_s


def _model(small: bool):
  import jax.numpy as jnp
  from flax import nnx

  from ottvid_jax.models.decoder import DecoderConfig
  from ottvid_jax.models.qwen2_5_vl import Qwen2_5_VL, Qwen2_5_VLConfig
  from ottvid_jax.models.random_weights import random_model

  cfg = Qwen2_5_VLConfig.qwen2_5_vl_7b()
  if small:
    cfg = dataclasses.replace(
        cfg, text=DecoderConfig(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, mrope_section=(8, 12, 12), head_dim=64),
        vision=dataclasses.replace(cfg.vision, depth=1, hidden_size=32, intermediate_size=64, num_heads=2,
                                   out_hidden_size=128, fullatt_block_indexes=(0,)))
  return random_model(lambda: Qwen2_5_VL(cfg, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))


def run(device_counts, lengths, repeats: int, small: bool) -> dict:
  import jax
  import jax.numpy as jnp

  from ottvid_jax.models import sharding
  from ottvid_jax.models.generate import Generator, SamplingConfig

  if max(device_counts) > jax.device_count():
    raise SystemExit(f"asked for {max(device_counts)} devices, this machine has {jax.device_count()}")
  model = _model(small)
  width = model.language_model.config.hidden_size
  out = {"device": jax.devices()[0].device_kind, "jax": jax.__version__, "rows": []}
  reference: dict[int, np.ndarray] = {}
  for n in sorted(device_counts):
    if n > 1:
      sharding.tensor_parallel(model, sharding.make_mesh(jax.devices()[:n]))
    generator = Generator(model, decode_kernel="xla")
    for length in lengths:
      rng = np.random.default_rng(length)
      embeds = jnp.asarray(rng.normal(size=(1, length, width)) * 0.02, jnp.bfloat16)
      positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32)[None, None], (3, 1, length))
      mask = jnp.ones((1, length), bool)
      slots = generator.slots(length, NEW_TOKENS)

      def prefill():
        return jax.block_until_ready(generator.prefill(embeds, positions, mask, slots, True))

      def decode():
        logits, cache, kv_mask, delta = prefill()
        token = jnp.argmax(logits, -1).astype(jnp.int32)
        start = time.perf_counter()
        generator.decode(token, cache, kv_mask, delta, length, SamplingConfig(max_new_tokens=NEW_TOKENS + 1), [],
                         True)
        return (time.perf_counter() - start) / NEW_TOKENS

      logits = np.asarray(prefill()[0], np.float32)
      reference.setdefault(length, logits)
      decode()
      row = {"devices": n, "tokens": length, "prefill_ms": 1e3 * median_s(prefill, repeats),
             "decode_step_ms": 1e3 * statistics.median(decode() for _ in range(repeats)),
             "max_logit_difference": float(np.abs(logits - reference[length]).max()),
             "logit_scale": float(np.abs(reference[length]).max())}
      out["rows"].append(row)
      print(row, flush=True)
  return out


def report(result: dict) -> str:
  lines = [f"{result['device']}, jax {result['jax']}. Times in ms.", "",
           "| devices | prompt tokens | LLM prefill | decode, a token | largest logit difference from 1 device |",
           "|---|---|---|---|---|"]
  for r in result["rows"]:
    lines.append(f"| {r['devices']} | {r['tokens']} | {r['prefill_ms']:.1f} | {r['decode_step_ms']:.2f} | "
                 f"{r['max_logit_difference']:.3g} (of {r['logit_scale']:.3g}) |")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--devices", default="1,2", help="device counts, e.g. 1,2,4")
  parser.add_argument("--tokens", type=int, nargs="+", default=[4156, 470], help="prompt lengths")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--small", action="store_true", help="a tiny model (CPU smoke run)")
  parser.add_argument("--out")
  args = parser.parse_args()
  result = run([int(n) for n in args.devices.split(",")], args.tokens, args.repeats, args.small)
  print(report(result))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
