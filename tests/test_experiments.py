"""The backbone benchmark runs end to end at toy size (a smoke test of the script, not a timing)."""

import argparse
import json

from experiments import bench_backbones


def test_backbone_benchmark_at_toy_size(tmp_path):
  args = argparse.Namespace(model="qwen2_5_vl", small=True, repeats=1, memory=False, compare_decoding=True)
  out = bench_backbones.run_jax(args)
  assert [r["retention"] for r in out["rows"]] == list(bench_backbones.RETENTIONS)
  for row in out["rows"]:
    for key in ("prefill_ms", "decode_step_ms", "decode_one_step_per_call_ms", "decode_one_step_graphs_ms",
                "ttft_ms", "end_to_end_ms"):
      assert row[key] > 0
  tokens = {r["retention"]: r["llm_tokens"] for r in out["rows"]}
  assert tokens[0.1] < tokens[0.25] < tokens[1.0]
  path = tmp_path / "jax.json"
  path.write_text(json.dumps(out))
  table = bench_backbones.report(json.loads(path.read_text()), None, {"rows": [{"retention": 1.0, "peak_gib": 1.5}]})
  assert "| ottvid_jax, r = 1.00 |" in table and table.rstrip().endswith("faster.")
  assert "| 1.50 |" in table  # the memory pass's peak replaces the timed run's


def test_profile_idle_time_leaves_out_the_pauses_between_calls():
  from experiments import profile_backbones

  # Two calls of three kernels (start, duration in us); the 68 us pause between the calls is the host's.
  kernels = [("gemm_1", 0, 10), ("norm.2", 12, 5), ("gemm_1", 14, 2), ("attn", 30, 1),
             ("gemm_1", 99, 10), ("norm.2", 114, 5), ("attn", 120, 3)]
  gaps = profile_backbones._gaps(kernels, calls=2)  # pylint: disable=protected-access
  assert abs(gaps["idle_ms"] - (2 + 13 + 5 + 1) / 2 / 1e3) < 1e-12  # overlapping kernels leave no gap
  assert gaps["longest_gaps"][0] == (13, "norm", "attn") and len(gaps["longest_gaps"]) == 4
