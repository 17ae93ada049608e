"""Learning OTT-Vid's traced hyperparameters by gradient descent through ``soft_compress``.

    python experiments/learn_hparams.py               # train on 2 clips, test on a held-out one
    python experiments/learn_hparams.py --steps 5     # a quick run

A small, honest example of a differentiable extension. Objective: the soft
counterpart of ``docs/FIDELITY.md``'s reconstruction error — every input token
rebuilt as a softmax-weighted mix of the soft output tokens (each output's
log-weight added to its logit), saliency-weighted relative error — on pixel
tokens of real clips (``experiments/fidelity.py``'s clips and pasted objects).
Positive hyperparameters are learned in log space, theta directly, with Adam.
The learned setting is then run through the *hard* ``compress`` and scored by
the hard reconstruction error on the training clips and on a held-out clip,
next to the paper's setting. Nothing here claims benchmark gains: the proxy
does not see what strong pruning protects against (see ``docs/SWEEP.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ottvid_jax as ov
from ottvid_jax import fidelity, pixels
from ottvid_jax.compressor.selection import l2_normalize
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script from anywhere
from experiments.fidelity import load_clip, paste_objects

TRAIN, HELD_OUT = ("bigbuckbunny", "bikes"), ("carphone",)
LOGS = ("mass_tau", "budget_tau", "epsilon", "locality_scale")


def clip_tokens(name: str):
  features, saliency, grid = pixels.pixel_tokens(paste_objects(load_clip(name))[0])
  return jnp.asarray(features), jnp.asarray(saliency), grid


def to_config(params: dict, base: ov.OTTVidConfig) -> ov.OTTVidConfig:
  return jax.tree_util.tree_unflatten(
      jax.tree_util.tree_structure(base),
      [jnp.exp(params[n]) if n in LOGS else params[n] for n in ("mass_tau", "budget_tau", "cost_threshold",
                                                                 "epsilon", "locality_scale")])


def soft_error(config, features, saliency, grid, temperature: float = 0.05) -> jnp.ndarray:
  out = ov.soft_compress(features, saliency, config, grid_hw=grid, temperature=temperature)
  t, n, d = features.shape
  logits = (l2_normalize(features).reshape(t * n, d) @ l2_normalize(out.tokens).T) / temperature
  mix = jax.nn.softmax(logits + jnp.log(out.weight + 1e-6)[None, :], axis=-1)  # [T*N, T*K]
  rebuilt = (mix @ out.tokens).reshape(t, n, d)
  return fidelity.reconstruction_error(features, saliency, rebuilt)


def hard_error(config, features, saliency, grid) -> float:
  out = ov.compress(features, saliency, config, grid_hw=grid)
  return float(fidelity.reconstruction_error(features, saliency, fidelity.rebuild(features, out.tokens, out.valid,
                                                                                   out.span)))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=60)
  parser.add_argument("--learning-rate", type=float, default=0.05)
  parser.add_argument("--retention", type=float, default=0.1)
  args = parser.parse_args()
  base = ov.OTTVidConfig(retention=args.retention)
  train = [clip_tokens(c) for c in TRAIN]
  held = [clip_tokens(c) for c in HELD_OUT]
  params = {n: jnp.log(jnp.float32(getattr(base, n))) for n in LOGS}
  params["cost_threshold"] = jnp.float32(base.cost_threshold)
  optimiser = optax.adam(args.learning_rate)
  state = optimiser.init(params)
  grads_of = [jax.jit(jax.value_and_grad(lambda p, f=f, s=s, g=g: soft_error(to_config(p, base), f, s, g)))
              for f, s, g in train]
  start = time.perf_counter()
  for step in range(args.steps):
    values, grads = zip(*(fn(params) for fn in grads_of))
    grad = jax.tree_util.tree_map(lambda *g: sum(g) / len(g), *grads)
    updates, state = optimiser.update(grad, state, params)
    params = optax.apply_updates(params, updates)
    if step % 10 == 0 or step == args.steps - 1:
      print(f"step {step:3d}: soft error {np.mean([float(v) for v in values]):.4f} "
            f"({time.perf_counter() - start:.0f} s)", flush=True)
  learned = to_config(params, base)
  shown = {n: float(getattr(learned, n)) for n in ("mass_tau", "budget_tau", "cost_threshold", "epsilon",
                                                    "locality_scale")}
  learned = base.replace(**shown)  # a plain, checked config for the hard method
  print("\nlearned:", {k: round(v, 4) for k, v in shown.items()})
  print("\n| setting | train clips (hard recon. error) | held-out clip (hard recon. error) |\n|---|---|---|")
  for name, cfg in (("paper", base), ("learned", learned)):
    tr = np.mean([hard_error(cfg, *c) for c in train])
    te = np.mean([hard_error(cfg, *c) for c in held])
    print(f"| {name} | {tr:.4f} | {te:.4f} |")


if __name__ == "__main__":
  main()
