"""What one read of a benchmark release returns: the questions, the skipped entries by reason, the layout."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Mapping, Optional

from ottvid_jax.eval.readers.files import json_safe
from ottvid_jax.eval.sample import Sample

__all__ = ["EXAMPLES", "ReadResult", "Reading", "Skip", "Skipped"]

EXAMPLES = 3  # examples kept per skip reason


class Skip(str, enum.Enum):
  """Why an annotation entry was not read as a question."""

  MISSING_VIDEO = "missing video"
  MISSING_SUBTITLES = "missing subtitles"
  CORRUPT_ENTRY = "corrupt entry"
  CORRUPT_FILE = "corrupt file"
  ANSWER_NOT_AMONG_CANDIDATES = "answer not among candidates"
  OPEN_ENDED = "open-ended task (excluded)"
  NO_PUBLIC_ANSWER = "no public answer"
  UNKNOWN_TASK = "unknown task"
  UNPAIRED = "unpaired span or query"


@dataclasses.dataclass(frozen=True)
class Skipped:
  """The entries skipped for one reason.

  Attributes:
    reason: a :class:`Skip` value (``"missing video"``, ...).
    count: how many entries.
    examples: the first few, each ``"<file>[<entry>]: <detail>"``.
  """

  reason: str
  count: int
  examples: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ReadResult:
  """The questions read from a release, and what was skipped.

  Attributes:
    benchmark: the registry name.
    layout: the layout detected (``"official"``, ``"lmms-eval"``).
    samples: the questions, in release order.
    skipped: reason -> :class:`Skipped`, most frequent first.
  """

  benchmark: str
  layout: str
  samples: tuple[Sample, ...]
  skipped: Mapping[str, Skipped]

  @property
  def skipped_count(self) -> int:
    """All skipped entries together."""
    return sum(s.count for s in self.skipped.values())

  def skip_counts(self) -> dict[str, int]:
    """reason -> count."""
    return {reason: s.count for reason, s in self.skipped.items()}

  def summary(self) -> str:
    """One line: ``"mvbench (official layout): read 1,234 questions; skipped 3: missing video 2, corrupt entry 1"``."""
    count = len(self.samples)
    head = f"{self.benchmark} ({self.layout} layout): read {count:,} question{'' if count == 1 else 's'}"
    if not self.skipped:
      return head + "; skipped none"
    parts = ", ".join(f"{reason} {s.count:,}" for reason, s in self.skipped.items())
    return f"{head}; skipped {self.skipped_count:,}: {parts}"

  def problems(self) -> list[str]:
    """One line per skip reason with its examples (for a console)."""
    lines = []
    for reason, s in self.skipped.items():
      more = f" (+{s.count - len(s.examples)} more)" if s.count > len(s.examples) else ""
      lines.append(f"{reason} x{s.count}: " + "; ".join(s.examples) + more)
    return lines

  def __iter__(self):
    """Unpacks as ``(samples, problem lines)``, the pair the readers used to return."""
    return iter((list(self.samples), self.problems()))


class Reading:
  """Collects the samples and skips of one read; assigns unique ids and marks duplicates.

  A question whose id is already taken gets ``#2``, ``#3``... appended (in
  release order, so the ids are the same on every read); one that repeats an
  earlier question (same video, question, options, answer, span, window and
  subtitles) gets ``meta["duplicate_of"]``: the earlier one's id.
  """

  def __init__(self, benchmark: str, layout: str):
    self.benchmark = benchmark
    self.layout = layout
    self._samples: list[Sample] = []
    self._ids: set[str] = set()
    self._seen: dict[tuple, str] = {}
    self._skips: dict[str, list] = {}

  def skip(self, reason: Skip, where: str, count: int = 1) -> None:
    """Records ``count`` entries skipped for ``reason``; ``where`` names them (``"file[entry]: detail"``)."""
    entry = self._skips.setdefault(Skip(reason).value, [0, []])
    entry[0] += count
    if len(entry[1]) < EXAMPLES:
      entry[1].append(where)

  def add(self, *, id: str, task: str, video: str, question: str, row: Any,  # pylint: disable=redefined-builtin
          meta: Optional[Mapping[str, Any]] = None, **fields) -> Sample:
    """Adds one question; ``row`` is the annotation entry as released (stored as ``meta["row"]``)."""
    unique, copy = str(id), 1
    while unique in self._ids:
      copy += 1
      unique = f"{id}#{copy}"
    self._ids.add(unique)
    all_meta = {"layout": self.layout, "row": json_safe(row)}
    all_meta.update(json_safe(dict(meta or {})))
    options = tuple(fields.pop("options", ()))
    key = (video, question, options, fields.get("answer"), fields.get("span"), fields.get("window"),
           fields.get("subtitles"))
    if key in self._seen:
      all_meta["duplicate_of"] = self._seen[key]
    else:
      self._seen[key] = unique
    sample = Sample(id=unique, benchmark=self.benchmark, task=str(task), video=video, question=question,
                    options=options, meta=all_meta, **fields)
    self._samples.append(sample)
    return sample

  def result(self) -> ReadResult:
    """The read, skip reasons most frequent first (ties in order of first occurrence)."""
    order = sorted(self._skips.items(), key=lambda item: -item[1][0])
    skipped = {reason: Skipped(reason, count, tuple(examples)) for reason, (count, examples) in order}
    return ReadResult(self.benchmark, self.layout, tuple(self._samples), skipped)
