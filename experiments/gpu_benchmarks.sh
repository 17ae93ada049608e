#!/usr/bin/env bash
# The backbone benchmarks of docs/PERFORMANCE.md for the given models, in one go on a GPU machine:
#   experiments/gpu_benchmarks.sh OUT_DIR qwen2_5_vl [llava_ov llava_video]
# For each model: ottvid_jax timed (filling a compilation cache), its memory pass from that cache, and
# transformers on the same card (not for llava_video, which transformers cannot express); then the tables.
# About 3-4 minutes a model on an H100. REPEATS (default 7) sets the repeats of every timing.
set -uo pipefail
out=$1
shift
cd "$(dirname "$0")/.."
mkdir -p "$out"
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/ottvid_jax_cache}
bench="python3 experiments/bench_backbones.py"
for model in "$@"; do
  $bench --side jax --model "$model" --repeats "${REPEATS:-7}" --out "$out/${model}_jax.json"
  $bench --side jax --model "$model" --memory --out "$out/${model}_jax_memory.json"
  if [ "$model" != llava_video ]; then
    $bench --side torch --model "$model" --repeats "${REPEATS:-7}" --out "$out/${model}_torch.json"
  fi
  $bench --report "$out/${model}_jax.json" "$out/${model}_torch.json" "$out/${model}_jax_memory.json"
done
