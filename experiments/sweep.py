"""A 256-point sweep of OTT-Vid's traced hyperparameters, as one compiled call per static setting.

    python experiments/sweep.py                  # r = 0.1, gamma = 0.3; 3 real clips; table + heat maps
    python experiments/sweep.py --time           # also: the same grid as a Python loop of jitted calls
    python experiments/sweep.py --sharded        # the configuration axis over every local device

Grid: tau_m in {0.1, 0.2, 0.3, 0.5} x tau_b in {0.1, 0.3, 1, 3} x theta in {0.2, 0.3, 0.5, 1}
x epsilon in {0.01, 0.03} x lambda_loc in {0.5, 1}. Measures (``ottvid_jax.fidelity``, the
proxies of ``docs/FIDELITY.md``) on the clips and pasted objects of ``experiments/fidelity.py``:
saliency-weighted reconstruction error, and the share of grids in which the stationary and the moving
object survive. Prints the best settings next to the paper's, writes heat maps (mean error over the
other axes) for each pair of hyperparameters to ``--plot``.
"""

from __future__ import annotations

import argparse
import os
import sys
import itertools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import ottvid_jax as ov
from ottvid_jax import fidelity, pixels, sweep
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script from anywhere
from experiments.fidelity import CLIPS, load_clip, paste_objects

AXES = {"mass_tau": [0.1, 0.2, 0.3, 0.5], "budget_tau": [0.1, 0.3, 1.0, 3.0], "cost_threshold": [0.2, 0.3, 0.5, 1.0],
        "epsilon": [0.01, 0.03], "locality_scale": [0.5, 1.0]}
PAPER = {"mass_tau": 0.3, "budget_tau": 0.3, "cost_threshold": 0.3, "epsilon": 0.01, "locality_scale": 1.0}


def clip_inputs(name: str):
  frames, still, path = paste_objects(load_clip(name))
  features, saliency, grid = pixels.pixel_tokens(frames)
  t = features.shape[0]
  still_cells = np.asarray([still[0] * grid[1] + still[1]] * t)
  moving_cells = np.asarray([r * grid[1] + c for r, c in path][:t])
  return features, saliency, grid, still_cells, moving_cells


def measures(features, saliency, grid, still, moving, config):
  """(reconstruction error, stationary kept, moving kept) of one config: jit and vmap friendly."""
  out = ov.compress(features, saliency, config, grid_hw=grid)
  rebuilt = fidelity.rebuild(features, out.tokens, out.valid, out.span)
  frames = jnp.arange(features.shape[0])

  def kept(cells):
    a, b = jnp.asarray(features)[frames, cells], rebuilt[frames, cells]
    cosine = jnp.sum(a * b, -1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1) + 1e-8)
    return jnp.mean(cosine >= 0.9)

  return fidelity.reconstruction_error(features, saliency, rebuilt), kept(still), kept(moving)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--retention", type=float, default=0.1)
  parser.add_argument("--temporal-share", type=float, default=0.3)
  parser.add_argument("--time", action="store_true", help="time the vmapped sweep against a loop of jitted calls")
  parser.add_argument("--sharded", action="store_true", help="spread the configurations over all local devices")
  parser.add_argument("--clips", nargs="*", default=list(CLIPS))
  parser.add_argument("--plot", default="docs/sweep.png")
  args = parser.parse_args()
  base = ov.OTTVidConfig(retention=args.retention, temporal_share=args.temporal_share)
  configs, points = sweep.config_grid(base, **AXES)
  size = len(points)
  if args.sharded:
    configs, size = sweep.shard_configs(configs)
  device = jax.devices()[0]
  print(f"# {len(points)} configurations, r = {args.retention}, gamma = {args.temporal_share}, "
        f"{jax.local_device_count()} x {getattr(device, 'device_kind', device.platform)}", flush=True)
  results = []
  for name in args.clips:
    features, saliency, grid, still, moving = clip_inputs(name)
    fn = jax.jit(jax.vmap(lambda c, f=features, s=saliency, g=grid, a=still, b=moving: measures(f, s, g, a, b, c)))
    start = time.perf_counter()
    out = jax.block_until_ready(fn(configs))
    compile_s = time.perf_counter() - start
    results.append(np.stack([np.asarray(x)[:size] for x in out], axis=-1))  # [B, 3]
    line = f"# {name}: first call (compile + run) {compile_s:.1f} s"
    if args.time:
      vmapped = statistics.median(_timed(lambda: jax.block_until_ready(fn(configs))) for _ in range(7))
      single = jax.jit(lambda c, f=features, s=saliency, g=grid, a=still, b=moving: measures(f, s, g, a, b, c))
      jax.block_until_ready(single(base))
      loop = _timed(lambda: [jax.block_until_ready(single(base.replace(**p))) for p in points])
      line += (f"; vmapped sweep {1e3 * vmapped:.1f} ms, loop of {len(points)} jitted calls {1e3 * loop:.0f} ms "
               f"({loop / vmapped:.1f}x)")
    print(line, flush=True)
  table = np.mean(np.stack(results), axis=0)  # [B, 3], averaged over clips
  order = np.argsort(table[:, 0])
  paper = next(i for i, p in enumerate(points) if all(abs(p[k] - v) < 1e-9 for k, v in PAPER.items()))
  print("\n| rank | tau_m | tau_b | theta | epsilon | lambda_loc | recon. error | stationary kept | moving kept |")
  print("|---|---|---|---|---|---|---|---|---|")
  for rank, i in [(r + 1, i) for r, i in enumerate(order[:8])] + [("paper", paper)]:
    p = points[i]
    e, s, m = table[i]
    print(f"| {rank} | {p['mass_tau']} | {p['budget_tau']} | {p['cost_threshold']} | {p['epsilon']} | "
          f"{p['locality_scale']} | {e:.4f} | {100 * s:.0f}% | {100 * m:.0f}% |")
  print(f"\nthe paper's setting ranks {int(np.where(order == paper)[0][0]) + 1} of {len(points)} on this proxy")
  heat_maps(table[:, 0], points, args.plot)


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def heat_maps(errors, points, path) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  names = list(AXES)
  pairs = list(itertools.combinations(names, 2))
  fig, axes = plt.subplots(2, 5, figsize=(18, 7))
  for ax, (a, b) in zip(axes.reshape(-1), pairs):
    grid = np.zeros((len(AXES[a]), len(AXES[b])))
    for i, va in enumerate(AXES[a]):
      for j, vb in enumerate(AXES[b]):
        grid[i, j] = np.mean([e for e, p in zip(errors, points) if p[a] == va and p[b] == vb])
    image = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(AXES[b])), [str(v) for v in AXES[b]])
    ax.set_yticks(range(len(AXES[a])), [str(v) for v in AXES[a]])
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    fig.colorbar(image, ax=ax, fraction=0.046)
  fig.suptitle("OTT-Vid sweep: saliency-weighted reconstruction error (lower is better), mean over the other "
               "axes and 3 clips; pixel features", fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=100)


if __name__ == "__main__":
  main()
