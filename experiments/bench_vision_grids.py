"""Qwen2.5-VL-7B's vision tower at several frame sizes, with its Pallas kernels and with XLA's ops.

    XLA_PYTHON_CLIENT_PREALLOCATE=false python experiments/bench_vision_grids.py --grids 16x32x32 16x30x42

Random bf16 weights of the 7B tower; each grid ``t x h x w`` (in patches: 32 frames of 448 x 448 are 16 x 32 x
32) is timed with ``VisionTower.kernels = "auto"`` (the window attention and the fused residual add + norm as
Pallas kernels on a GPU) and ``"xla"`` (XLA's ops, cuDNN's attention), medians after two warm-ups, and the
merged tokens of the two paths compared. Grids whose sides are not multiples of 8 patches have partial windows
(e.g. 30 x 42: 420 x 588 pixels), which the benchmark of ``bench_backbones.py`` does not reach.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script from anywhere
from experiments.bench_backbones import median_s


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--grids", nargs="+", default=["16x32x32", "16x30x42"], help="t x h x w in patches")
  parser.add_argument("--repeats", type=int, default=9)
  args = parser.parse_args()
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from ottvid_jax.models.qwen2_5_vl import Qwen2_5_VLConfig
  from ottvid_jax.models.qwen2_5_vl.vision import VisionTower
  from ottvid_jax.models.random_weights import random_model

  config = Qwen2_5_VLConfig.qwen2_5_vl_7b().vision
  tower = random_model(lambda: VisionTower(config, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
  print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}\n")
  print("| grid (t x h x w patches) | pixels a frame | patches | Pallas kernels (ms) | XLA's ops (ms) "
        "| tokens' mean / max difference |\n|---|---|---|---|---|---|")
  for text in args.grids:
    grid = tuple(int(v) for v in text.split("x"))
    pixels = jnp.asarray(np.random.default_rng(0).normal(size=(int(np.prod(grid)), 1176)), jnp.bfloat16)
    times, tokens = {}, {}
    for kernels in ("auto", "xla"):
      tower.kernels = kernels
      graphdef, state = nnx.split(tower)
      fn = jax.jit(lambda s, p, g=graphdef, grid=grid: nnx.merge(g, s)(p, (grid,), saliency=False)[0])
      times[kernels] = 1e3 * median_s(lambda f=fn, s=state, p=pixels: jax.block_until_ready(f(s, p)), args.repeats)
      tokens[kernels] = fn(state, pixels).astype(jnp.float32)
    diff = jnp.abs(tokens["auto"] - tokens["xla"])
    print(f"| {text} | {grid[1] * 14} x {grid[2] * 14} | {pixels.shape[0]} | {times['auto']:.2f} | "
          f"{times['xla']:.2f} | {float(diff.mean()):.4f} / {float(diff.max()):.3f} |", flush=True)


if __name__ == "__main__":
  main()
