"""Each stage alone: hand-checked cases and invariants."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ottvid_jax as ov
from tests import reference


# ----------------------------------------------------------------- selection


def test_select_hand_checked():
  # Tokens 0 and 1 are near-duplicates, 2 is orthogonal to both; 3 is between.
  x = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.7, 0.7]], np.float32)
  sim = ov.cosine_similarity(x)
  # Saliency on 2 only: the first pick covers token 2 best, i.e. picks 2 itself.
  w = ov.normalize_saliency(jnp.array([0.0, 0.0, 1.0, 0.0]))
  assert list(ov.select_tokens(sim, w, 1)) == [2]
  # Uniform saliency, K = 2: the best single cover is 3 (close to all), the
  # second pick then adds the most weighted coverage; compare with brute force.
  w = ov.normalize_saliency(jnp.ones(4))
  got = list(ov.select_tokens(sim, w, 2))
  assert got == reference.select(np.asarray(sim, np.float64), np.asarray(w, np.float64), 2)
  assert got[0] < got[1]


@pytest.mark.parametrize("seed", range(3))
def test_select_matches_reference_and_is_sorted_unique(seed):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(30, 8)).astype(np.float32)
  w = rng.random(30).astype(np.float32)
  sim = ov.cosine_similarity(x)
  wn = ov.normalize_saliency(w)
  got = np.asarray(ov.select_tokens(sim, wn, 7))
  assert list(got) == reference.select(np.asarray(sim, np.float64), np.asarray(wn, np.float64), 7)
  assert len(set(got)) == 7 and np.all(np.diff(got) > 0)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_cosines_are_the_float32_cosines(dtype):
  """Half-precision rows: Gram matrix with float32 accumulation, scaled by the norms, = float32 cosines of the
  same (exactly upcast) values; a zero row stays zero; x against y as well."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(40, 96)) * 3, dtype).at[5].set(0)
  y = jnp.asarray(rng.normal(size=(7, 96)), dtype)
  for got, want in ((ov.cosine_similarity(x), ov.cosine_similarity(x.astype(jnp.float32))),
                    (ov.cosine_similarity(x, y), ov.cosine_similarity(x.astype(jnp.float32), y.astype(jnp.float32)))):
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
  assert not np.any(np.asarray(ov.cosine_similarity(x))[5])


def test_select_keeps_all_at_full_keep():
  sim = ov.cosine_similarity(np.random.default_rng(0).normal(size=(9, 4)))
  assert list(ov.select_tokens(sim, jnp.full(9, 1 / 9), 9)) == list(range(9))
  with pytest.raises(ValueError):
    ov.select_tokens(sim, jnp.full(9, 1 / 9), 10)


# ---------------------------------------------------------------------- mass


def test_leave_one_out_hand_checked():
  # Four tokens, kept {0, 2}. Similarities to the kept set (rows i):
  sim = np.eye(4, dtype=np.float32)
  sim[1, 0], sim[1, 2] = 0.9, 0.5  # token 1: best 0, gap 0.4
  sim[3, 0], sim[3, 2] = 0.2, 0.6  # token 3: best 2, gap 0.4
  w = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
  loo = ov.leave_one_out(jnp.asarray(sim), jnp.asarray(w), jnp.array([0, 2]))
  # token 0: best 0 (1.0) vs 0.0 -> 0.1 * 1; token 2: best 2 -> 0.3 * 1.
  np.testing.assert_allclose(loo, [0.1 + 0.2 * 0.4, 0.3 + 0.4 * 0.4], rtol=1e-6)


def test_mass_softmax_of_negative_scaled_loo():
  loo = jnp.array([0.0, 1.0, 2.0, 4.0])
  m = ov.mass_from_scores(loo, 0.3)
  expect = np.exp(-np.array([0, 0.25, 0.5, 1.0]) / 0.3)
  np.testing.assert_allclose(m, expect / expect.sum(), rtol=1e-5)
  assert np.all(np.diff(np.asarray(m)) < 0)  # larger loss, lower mass
  np.testing.assert_allclose(ov.uniform_mass(4), 0.25)


# ---------------------------------------------------------------------- cost


def test_grid_positions():
  pos = ov.grid_positions(3, 2)
  np.testing.assert_array_equal(pos, [[0, 0], [0, 1], [0.5, 0], [0.5, 1], [1, 0], [1, 1]])
  np.testing.assert_array_equal(ov.grid_positions(1, 3), [[0, 0], [0, 0.5], [0, 1]])
  np.testing.assert_array_equal(ov.grid_positions(1, 1), [[0, 0]])


def test_alpha_static_and_moving():
  x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
  assert float(ov.pair_alpha(x, x)) == pytest.approx(0.5, abs=1e-6)
  assert float(ov.pair_alpha(x, -x)) == pytest.approx(1.0, abs=1e-6)


def test_pair_cost_hand_checked():
  a = np.array([[1.0, 0.0]], np.float32)
  b = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)
  pa = np.array([[0.0, 0.0]], np.float32)
  pb = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]], np.float32)
  c = ov.pair_cost(a, b, pa, pb, 0.75)
  expect = [0.75 * 0 + 0.25 * 0, 0.75 * 1 + 0.25 * 1, 0.75 * 1 + 0.25 * (1 / np.sqrt(2))]
  np.testing.assert_allclose(c[0], expect, rtol=1e-6)
  # The locality scale multiplies the positional term only.
  c2 = ov.pair_cost(a, b, pa, pb, 0.75, 2.0)
  np.testing.assert_allclose(c2[0] - c[0], [0, 0.25, 0.25 / np.sqrt(2)], rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ transport


@pytest.mark.parametrize("seed", range(3))
def test_plan_marginals_and_reference(seed):
  rng = np.random.default_rng(seed)
  cost = rng.random((9, 9)).astype(np.float32)
  a = rng.random(9).astype(np.float32) + 0.05
  b = rng.random(9).astype(np.float32) + 0.05
  res = ov.transport_plan(cost, a, b, 0.01, 200)
  plan = np.asarray(res.plan)
  np.testing.assert_allclose(plan.sum(1), a / a.sum(), atol=2e-3)  # row marginal: exact after the row update
  np.testing.assert_allclose(plan.sum(0), b / b.sum(), atol=2e-3)
  np.testing.assert_allclose(res.difficulty, (plan * cost).sum(), rtol=1e-6)
  ref = reference.sinkhorn(cost.astype(np.float64), a.astype(np.float64), b.astype(np.float64), 0.01, 200)
  np.testing.assert_allclose(plan, ref, atol=2e-6)
  assert float(res.marginal_error) < 5e-3


def test_plan_low_epsilon_is_an_assignment():
  # A permutation cost: at small epsilon the plan concentrates on it.
  perm = np.array([2, 0, 3, 1])
  cost = np.ones((4, 4), np.float32)
  cost[np.arange(4), perm] = 0.0
  plan = np.asarray(ov.transport_plan(cost, np.ones(4), np.ones(4), 0.01, 200).plan)
  np.testing.assert_array_equal(plan.argmax(1), perm)
  np.testing.assert_allclose(plan[np.arange(4), perm], 0.25, atol=1e-6)


# -------------------------------------------------------------------- budget


def test_budgets_sum_caps_and_favour_easy_pairs():
  rng = np.random.default_rng(0)
  w = rng.random(12).astype(np.float32)
  b = np.asarray(ov.allocate_budgets(jnp.asarray(w), 40, 9, 0.3))
  assert b.sum() == 40 and b.min() >= 0 and b.max() <= 9
  order = np.argsort(w)  # easiest first
  assert np.all(np.diff(b[order]) <= 0)
  np.testing.assert_array_equal(b, reference.allocate(w.astype(np.float64), 40, 9, 0.3))


def test_budgets_spill_over_under_tight_caps():
  w = jnp.array([0.0, 0.1, 0.5, 0.9])
  b = np.asarray(ov.allocate_budgets(w, 10, 3, 0.01))  # the easiest pairs fill first
  np.testing.assert_array_equal(b, [3, 3, 3, 1])
  b = np.asarray(ov.allocate_budgets(w, 100, 3, 0.3))  # more than the caps allow
  np.testing.assert_array_equal(b, [3, 3, 3, 3])
  np.testing.assert_array_equal(ov.allocate_budgets(w, 5, 0, 0.3), [0, 0, 0, 0])
  np.testing.assert_array_equal(ov.allocate_budgets(w, 0, 3, 0.3), [0, 0, 0, 0])


@pytest.mark.parametrize("seed", range(5))
def test_budgets_match_reference_loop(seed):
  rng = np.random.default_rng(seed)
  pairs = int(rng.integers(1, 20))
  cap = int(rng.integers(1, 8))
  total = int(rng.integers(0, pairs * cap + 5))
  w = rng.random(pairs).astype(np.float32)
  tau = float(rng.choice([0.05, 0.3, 1.0]))
  got = np.asarray(ov.allocate_budgets(jnp.asarray(w), total, cap, tau))
  np.testing.assert_array_equal(got, reference.allocate(w.astype(np.float64), total, cap, tau))
  assert got.sum() == min(total, pairs * cap)


def test_budget_loop_has_a_static_trip_count():
  """No data-dependent ``while``: on a GPU its condition would travel to the host on every trip."""
  jaxpr = jax.make_jaxpr(lambda w: ov.allocate_budgets(w, 40, 9, 0.3))(jnp.arange(12.0))
  assert "while" not in str(jaxpr)


@pytest.mark.parametrize("n", [1, 7, 256, 300])
def test_rank_descending_counts_like_a_stable_sort(n):
  from ottvid_jax.compressor.allocation import rank_descending

  values = np.random.default_rng(n).integers(0, 5, size=n).astype(np.float32)  # many ties
  values[:: 3] = -np.inf
  expected = np.empty(n, np.int64)
  expected[np.argsort(-values, kind="stable")] = np.arange(n)
  np.testing.assert_array_equal(rank_descending(jnp.asarray(values)), expected)


# ------------------------------------------------------------------ matching


@pytest.mark.parametrize("seed", range(20))
def test_column_max_equals_greedy_walk(seed):
  rng = np.random.default_rng(seed)
  rows, cols = rng.integers(1, 12, size=2)
  plan = rng.random((rows, cols)).astype(np.float32)
  budget = int(rng.integers(0, cols + 1))
  m = ov.match_columns(jnp.asarray(plan), budget)
  got = {(int(m.parent[j]), j) for j in range(cols) if m.accepted[j]}
  assert got == set(reference.greedy_walk(plan, budget))
  assert int(m.accepted.sum()) == budget


def test_matching_many_to_one():
  plan = jnp.array([[0.9, 0.8, 0.1], [0.0, 0.0, 0.2]])
  m = ov.match_columns(plan, 2)
  np.testing.assert_array_equal(m.parent, [0, 0, 1])
  np.testing.assert_array_equal(m.accepted, [True, True, False])


# --------------------------------------------------------------------- merge


def test_chains_hand_checked():
  # T = 4, K = 2. Pair 0: (1,0)->(0,1). Pair 1: (2,0)->(1,0), (2,1) pruned
  # from (1,1). Pair 2: (3,1)->(2,1) (a child of the pruned token).
  parent = jnp.array([[1, 0], [0, 1], [0, 1]])
  merged = jnp.array([[True, False], [True, False], [False, True]])
  pruned = jnp.array([[False, False], [False, True], [False, False]])
  chains = ov.link_chains(parent, merged, pruned)
  np.testing.assert_array_equal(chains.root, [0, 1, 1, 3, 1, 5, 6, 5])
  np.testing.assert_array_equal(chains.dropped, [0, 0, 0, 0, 0, 1, 0, 1])
  np.testing.assert_array_equal(chains.survivor, [1, 1, 0, 1, 0, 0, 1, 0])
  feats = jnp.arange(8.0)[:, None] * jnp.ones((1, 3))
  merged_feats = ov.merge_features(feats, chains.root)
  np.testing.assert_allclose(merged_feats[1], (1 + 2 + 4) / 3)
  w = jnp.array([1, 1, 2, 1, 1, 1, 1, 1.0])
  np.testing.assert_allclose(ov.merge_features(feats, chains.root, w)[1], (1 + 4 + 4) / 4)
  position, valid = ov.compact(chains.survivor, 5)
  np.testing.assert_array_equal(position[:4], [0, 1, 3, 6])
  np.testing.assert_array_equal(valid, [1, 1, 1, 1, 0])


@pytest.mark.parametrize("frames", [2, 3, 5, 9, 17, 33])
def test_long_chains_resolve(frames):
  # One chain through every frame: its root is the first frame's token.
  parent = jnp.zeros((frames - 1, 1), jnp.int32)
  merged = jnp.ones((frames - 1, 1), bool)
  chains = ov.link_chains(parent, merged, jnp.zeros_like(merged))
  np.testing.assert_array_equal(chains.root, np.zeros(frames))
  assert int(chains.survivor.sum()) == 1


def test_stage_functions_are_jittable():
  sim = ov.cosine_similarity(np.random.default_rng(0).normal(size=(10, 4)))
  w = jnp.full(10, 0.1)
  eager = ov.select_tokens(sim, w, 3)
  jitted = jax.jit(ov.select_tokens, static_argnums=2)(sim, w, 3)
  np.testing.assert_array_equal(eager, jitted)
  b = jax.jit(ov.allocate_budgets, static_argnums=(1, 2))(jnp.arange(5.0), 7, 3, 0.3)
  np.testing.assert_array_equal(b, ov.allocate_budgets(jnp.arange(5.0), 7, 3, 0.3))
