"""A plain NumPy/Python OTT-Vid, written from METHOD.md, for tests only.

Loops where the JAX code vectorises: a greedy walk over the sorted plan
entries instead of the column-maximum form, a sequential union-find instead of
pointer doubling, a Python budget loop, and a float64 log-domain Sinkhorn with
the authors' update order (column potential, then row). It trades speed for
being obviously the specification.
"""

from __future__ import annotations

import math

import numpy as np


def logsumexp(x, axis):
  top = np.max(x, axis=axis, keepdims=True)
  return np.squeeze(top, axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def normalize(x):
  x = np.asarray(x, np.float64)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def select(sim, w, keep):
  n = sim.shape[0]
  cur = np.zeros(n)
  chosen = []
  for _ in range(keep):
    gain = (w[:, None] * np.maximum(sim - cur[:, None], 0.0)).sum(0)
    gain[chosen] = -np.inf
    j = int(np.argmax(gain))
    chosen.append(j)
    cur = np.maximum(cur, sim[:, j])
  return sorted(chosen)


def loo_mass(sim, w, selected, tau):
  s = sim[:, selected]
  loo = np.zeros(len(selected))
  for i in range(sim.shape[0]):
    order = np.argsort(-s[i], kind="stable")
    second = s[i, order[1]] if len(selected) > 1 else 0.0
    loo[order[0]] += w[i] * max(0.0, s[i, order[0]] - second)
  scaled = loo / (loo.max() + 1e-8)
  logits = -scaled / tau
  e = np.exp(logits - logits.max())
  return e / e.sum()


def sinkhorn(cost, a, b, eps, iters):
  a = a / a.sum()
  b = b / b.sum()
  f = np.zeros(len(a))
  g = np.zeros(len(b))
  for _ in range(iters):
    g = eps * np.log(b) - eps * logsumexp((f[:, None] - cost) / eps, axis=0)
    f = eps * np.log(a) - eps * logsumexp((g[None, :] - cost) / eps, axis=1)
  return np.exp((f[:, None] + g[None, :] - cost) / eps)


def allocate(difficulty, total, cap, tau):
  p = len(difficulty)
  budget = np.zeros(p, int)
  active = np.full(p, cap > 0)
  remaining = total
  while remaining > 0 and active.any():
    idx = np.flatnonzero(active)
    logits = -difficulty[idx] / tau
    omega = np.exp(logits - logits.max())
    omega /= omega.sum()
    share = omega * remaining
    want = np.floor(share).astype(int)
    leftover = remaining - want.sum()
    frac = share - np.floor(share)
    for k in np.argsort(-frac, kind="stable")[:leftover]:
      want[k] += 1
    applied = np.minimum(want, cap - budget[idx])
    budget[idx] += applied
    remaining = int((want - applied).sum())
    active[idx[budget[idx] >= cap]] = False
    if applied.sum() == 0:
      break
  return budget


def greedy_walk(score, budget):
  """The authors' rule: walk entries from the largest, one use per column."""
  k_rows, k_cols = score.shape
  order = np.argsort(-score.reshape(-1), kind="stable")
  used, matches = set(), []
  for flat in order:
    if len(matches) >= budget:
      break
    i, j = divmod(int(flat), k_cols)
    if j in used:
      continue
    used.add(j)
    matches.append((i, j))
  return matches


def compress(features, saliency, grid_hw, *, retention=0.1, temporal_share=0.3, mass_tau=0.3,
             budget_tau=0.3, cost_threshold=0.3, epsilon=0.01, iters=200, uniform_mass=False):
  """Returns (index list, merged features list, spans list, budgets) in raster order."""
  features = np.asarray(features, np.float64)
  t_frames, n, _ = features.shape
  h, w_grid = grid_hw
  keep = min(n, max(1, int(n * retention ** (1 - temporal_share))))
  target = int(round(t_frames * n * retention))
  merges = max(0, t_frames * keep - target)
  xn = normalize(features)
  sal = np.asarray(saliency, np.float64)
  sal = sal / (sal.sum(-1, keepdims=True) + 1e-8)
  sims = [xn[t] @ xn[t].T for t in range(t_frames)]
  selected = [select(sims[t], sal[t], keep) for t in range(t_frames)]
  if uniform_mass:
    masses = [np.full(keep, 1.0 / keep) for _ in range(t_frames)]
  else:
    masses = [loo_mass(sims[t], sal[t], selected[t], mass_tau) for t in range(t_frames)]
  rows = np.arange(h) / max(h - 1, 1)
  cols = np.arange(w_grid) / max(w_grid - 1, 1)
  pos = np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(n, 2)
  plans, costs, difficulty = [], [], []
  for t in range(t_frames - 1):
    alpha = 0.5 + 0.5 * np.clip(1 - (xn[t] * xn[t + 1]).sum(-1).mean(), 0, 1)
    a_sel, b_sel = selected[t], selected[t + 1]
    appearance = 1 - np.maximum(xn[t][a_sel] @ xn[t + 1][b_sel].T, 0)
    dist = np.linalg.norm(pos[a_sel][:, None] - pos[b_sel][None], axis=-1) / math.sqrt(2)
    cost = alpha * appearance + (1 - alpha) * dist
    plan = sinkhorn(cost, masses[t], masses[t + 1], epsilon, iters)
    plans.append(plan)
    costs.append(cost)
    difficulty.append((plan * cost).sum())
  budgets = allocate(np.array(difficulty), merges, keep - 1, budget_tau)
  # Sequential union-find over flat kept tokens f = t * keep + k.
  parent = list(range(t_frames * keep))
  pruned_roots = set()
  for t in range(t_frames - 1):
    for i, j in greedy_walk(plans[t], budgets[t]):
      child, par = (t + 1) * keep + j, t * keep + i
      if cost_threshold is not None and costs[t][i, j] > cost_threshold:
        pruned_roots.add(child)
      else:
        parent[child] = par

  def find(f):
    while parent[f] != f:
      f = parent[f]
    return f

  groups = {}
  for f in range(t_frames * keep):
    groups.setdefault(find(f), []).append(f)
  index, merged, spans = [], [], []
  for root in sorted(groups):
    if root in pruned_roots:
      continue
    members = groups[root]
    t_root, k_root = divmod(root, keep)
    index.append(t_root * n + selected[t_root][k_root])
    merged.append(np.mean([features[f // keep][selected[f // keep][f % keep]] for f in members], 0))
    spans.append((t_root, max(f // keep for f in members)))
  return index, merged, spans, budgets
