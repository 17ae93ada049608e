"""Prompts, answer parsing and metrics (the lmms-eval conventions, restated)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Optional

from ottvid_jax.eval.readers import LETTERS, Sample

__all__ = ["grounding_metrics", "iou", "mc_accuracy", "parse_letter", "parse_span", "prompt"]

_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer", "The best option is",
             "The correct option is", "Best answer:", "Best option:", "Answer:", "Option:")


def prompt(sample: Sample) -> str:
  """The question as the model sees it."""
  if sample.grounding:
    return (f'Please find the visual event described by the sentence: "{sample.question}". Give the start and '
            "end times of the event in seconds, in the format 'a - b seconds'.")
  letters = LETTERS[:len(sample.options)]
  options = "\n".join(f"{letter}. {option}" for letter, option in zip(letters, sample.options))
  return ("Select the best answer to the following multiple-choice question based on the video. Respond with "
          f"only the letter ({', '.join(letters)}) of the correct option.\n{sample.question}\n{options}\n"
          "The best answer is:")


def parse_letter(response: str, count: int = 5) -> Optional[str]:
  """The option letter in a response, as lmms-eval's multiple-choice post-processing finds it.

  Known answer prefixes are stripped; then the first standalone allowed letter
  (``B``, ``(B)``, ``B.``); failing that, a short response's first allowed
  letter; a long response without one gives None.
  """
  text = response.strip()
  for prefix in _PREFIXES:
    text = text.replace(prefix, "")
  letters = LETTERS[:count]
  standalone = re.search(rf"\b([{letters}])\b", text)
  if standalone:
    return standalone.group(1)
  if len(text.split()) > 10:
    return None
  match = re.search(f"[{letters}]", text)
  return match.group(0) if match else None


def parse_span(response: str) -> Optional[tuple[float, float]]:
  """The first ``a - b`` pair of numbers (seconds) in a response, ordered; None if there is none."""
  match = re.search(r"(\d+(?:\.\d+)?)\s*(?:-|–|to|and)\s*(\d+(?:\.\d+)?)", response)
  if not match:
    return None
  a, b = float(match.group(1)), float(match.group(2))
  return (min(a, b), max(a, b))


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
  inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
  union = max(a[1], b[1]) - min(a[0], b[0])
  return inter / union if union > 0 else float(a == b)


def mc_accuracy(records: list[dict]) -> dict:
  """Accuracy (%) per task and overall (over questions) from result records."""
  per_task = defaultdict(list)
  for r in records:
    per_task[r["task"]].append(float(r["correct"]))
  everything = [v for values in per_task.values() for v in values]
  return {"overall": 100.0 * sum(everything) / max(len(everything), 1), "questions": len(everything),
          "tasks": {t: 100.0 * sum(v) / len(v) for t, v in sorted(per_task.items())}}


def grounding_metrics(records: list[dict]) -> dict:
  """mIoU and R1@{0.3, 0.5, 0.7} (%) over result records (an unparsable answer counts as IoU 0)."""
  ious = [float(r["iou"]) for r in records]
  n = max(len(ious), 1)
  return {"mIoU": 100.0 * sum(ious) / n, "questions": len(ious),
          **{f"R1@{t}": 100.0 * sum(i >= t for i in ious) / n for t in (0.3, 0.5, 0.7)}}
