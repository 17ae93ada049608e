"""The paper's tables from a folder of results files: scores and "% of uncompressed", method × retention.

    runs, skipped = report.collect("results")
    table = report.build(runs)
    print(report.markdown(table))

A row is one setting (backbone, protocol, checkpoint, dtype, method with its
hyperparameters, retention); a column is one benchmark. Each cell holds the
benchmark's headline score over the questions answered (accuracy; mIoU for the
grounding sets, as :func:`~ottvid_jax.eval.metrics.aggregate` gives it), and,
where the uncompressed run of the same benchmark, backbone, checkpoint,
protocol settings and dtype is in the folder, the score as a percentage of
that run's on the questions both answered
(:func:`~ottvid_jax.eval.metrics.paired_percent`). The row's means average
those per-benchmark percentages over the VQA sets, the VTG (grounding) sets and
all of them: the paper averages the same ratio but does not publish how, so
the per-benchmark ratios stand beside the means.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import io
import json
import os
import statistics
from typing import Optional, Sequence

from ottvid_jax.eval import metrics
from ottvid_jax.eval.prompts import BENCHMARKS
from ottvid_jax.eval.results import RunIdentity, failed, read_results

__all__ = ["Cell", "Report", "Row", "Run", "build", "collect", "csv_text", "markdown", "plot"]


@dataclasses.dataclass(frozen=True)
class Run:
  """One results file: its path, run identity and records (each question once)."""

  path: str
  identity: RunIdentity
  records: tuple


@dataclasses.dataclass(frozen=True, order=True)
class Row:
  """One setting of the table; runs of one row on different benchmarks share everything here."""

  backbone: str
  protocol: str
  method: str
  retention: float
  checkpoint: str
  dtype: str
  hyperparameters: str  # JSON, sorted keys

  @classmethod
  def of(cls, identity: RunIdentity) -> "Row":
    return cls(identity.backbone, identity.protocol, identity.method, float(identity.retention), identity.checkpoint,
               identity.dtype, json.dumps(dict(identity.hyperparameters), sort_keys=True))

  @property
  def uncompressed(self) -> bool:
    return self.method == "none"


@dataclasses.dataclass(frozen=True)
class Cell:
  """One run's results on one benchmark.

  Attributes:
    score: the headline score (percent) over the answered questions, None if none is.
    answered: questions answered without error.
    errors: questions whose last record is an error.
    percent: the score as a percentage of the uncompressed run's on the questions both
      answered, None without a baseline (or when the baseline scores 0).
    paired: the questions that percentage is computed on.
    path: the results file.
  """

  score: Optional[float]
  answered: int
  errors: int
  percent: Optional[float]
  paired: int
  path: str


@dataclasses.dataclass(frozen=True)
class Report:
  """The table: ``cells[(row, benchmark)]`` for the rows and benchmarks present."""

  rows: tuple
  benchmarks: tuple
  cells: dict

  def means(self, row: Row) -> dict:
    """The row's mean "% of uncompressed" over its VQA, VTG and all benchmarks (None where none has one)."""
    out = {}
    for name, wanted in (("vqa", False), ("vtg", True), ("all", None)):
      values = [c.percent for b in self.benchmarks if (c := self.cells.get((row, b))) is not None and
                c.percent is not None and (wanted is None or (b in metrics.GROUNDING) == wanted)]
      out[name] = statistics.fmean(values) if values else None
    return out

  def labels(self) -> dict:
    """A short label per row: ``backbone method r (protocol)``, then where it departs from its look-alikes.

    Rows that share backbone, method, retention and protocol get, in brackets,
    each of dtype, checkpoint and hyperparameters in which they differ from
    the look-alikes' most common value (checkpoints by fingerprint,
    hyperparameters by a 6-digit digest).
    """
    groups: dict = {}
    for row in self.rows:
      groups.setdefault((row.backbone, row.method, row.retention, row.protocol), []).append(row)
    show = {"dtype": lambda v: v, "checkpoint": lambda v: v.split(":")[-1][:8],
            "hyperparameters": lambda v: "hp " + hashlib.sha256(v.encode()).hexdigest()[:6]}
    out = {}
    for twins in groups.values():
      common = {f: collections.Counter(getattr(t, f) for t in twins).most_common(1)[0][0] for f in show}
      for row in twins:
        label = f"{row.backbone} {row.method} {row.retention:g} ({row.protocol})"
        extra = [how(getattr(row, f)) for f, how in show.items() if getattr(row, f) != common[f]]
        out[row] = label + (f" [{' '.join(extra)}]" if extra else "")
    return out


def collect(folder: str) -> tuple[list[Run], list[str]]:
  """Every results file under ``folder`` (recursively), and why others were left out.

  Returns:
    ``(runs, skipped)``: the files with a run identity, and one line per
    ``.jsonl`` file left out (no identity header, or not readable).

  Raises:
    FileNotFoundError: ``folder`` is not a folder.
  """
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"no results folder {folder}")
  runs, skipped = [], []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      if not name.endswith(".jsonl"):
        continue
      path = os.path.join(root, name)
      try:
        identity, records = read_results(path)
      except (ValueError, OSError, UnicodeDecodeError) as err:
        skipped.append(f"{path}: {err}")
        continue
      if identity is None:
        skipped.append(f"{path}: no run identity (not written by ottvid eval)")
        continue
      runs.append(Run(path, identity, tuple(records)))
  return runs, skipped


def _baseline_key(identity: RunIdentity) -> tuple:
  """What a run and its uncompressed baseline share: all but the method, its hyperparameters and retention."""
  return (identity.benchmark, identity.backbone, identity.checkpoint, identity.protocol,
          json.dumps(identity.settings, sort_keys=True), identity.dtype)


def build(runs: Sequence[Run]) -> Report:
  """The table of ``runs``.

  Raises:
    ValueError: two files hold the same row's results on the same benchmark
      (a second sweep in the same folder, say): the message names both files
      and what tells their runs apart.
  """
  by_cell: dict = {}
  for run in runs:
    key = (Row.of(run.identity), run.identity.benchmark)
    if key in by_cell:
      other = by_cell[key]
      diff = "; ".join(run.identity.differences(other.identity))
      diff = f"they differ in {diff}" if diff else "the same run"
      raise ValueError(f"two results files for {key[0].method} r={key[0].retention:g} on {key[1]}: {other.path} "
                       f"and {run.path} ({diff}); report them from separate folders")
    by_cell[key] = run
  baselines = {_baseline_key(r.identity): r for r in runs if r.identity.method == "none"}
  cells = {}
  for (row, benchmark), run in by_cell.items():
    answered = [r for r in run.records if not failed(r)]
    score = metrics.aggregate(benchmark, answered)["overall"] if answered else None
    percent, paired = None, 0
    base = baselines.get(_baseline_key(run.identity))
    if base is not None and answered:
      if base is run:
        percent, paired = 100.0, len(answered)
      elif any(not failed(r) for r in base.records):
        ratio = metrics.paired_percent(run.records, base.records)
        paired = ratio["paired"]
        percent = ratio["ratio"] if paired else None
    cells[(row, benchmark)] = Cell(score, len(answered), len(run.records) - len(answered), percent, paired, run.path)
  order = {name: i for i, name in enumerate(BENCHMARKS)}
  benchmarks = tuple(sorted({b for _, b in cells}, key=lambda b: (b in metrics.GROUNDING, order.get(b, len(order)))))
  rows = tuple(sorted({r for r, _ in cells}, key=lambda r: (r.backbone, r.protocol, r.checkpoint, r.dtype,
                                                            not r.uncompressed, r.method, -r.retention,
                                                            r.hyperparameters)))
  return Report(rows, benchmarks, cells)


def _number(value: Optional[float], digits: int = 1) -> str:
  return "" if value is None else f"{value:.{digits}f}"


def _cell_text(row: Row, cell: Optional[Cell]) -> str:
  if cell is None:
    return "–"
  text = _number(cell.score) if cell.score is not None else "n/a"
  if cell.percent is not None and not row.uncompressed:
    text += f" ({cell.percent:.1f}%)"
  if cell.errors:
    text += f" ⚠{cell.errors}"
  return text


def markdown(report: Report) -> str:
  """The table as Markdown: ``score (% of uncompressed)`` per benchmark, then the row's mean percentages.

  ``⚠n`` marks a cell with n failed questions (left out of its score); ``–``
  a benchmark the row has no results file for.
  """
  labels = report.labels()
  header = ["setting", *report.benchmarks, "VQA %", "VTG %", "mean %"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in report.rows:
    means = report.means(row)
    values = [_cell_text(row, report.cells.get((row, b))) for b in report.benchmarks]
    lines.append("| " + " | ".join([labels[row], *values, _number(means["vqa"]), _number(means["vtg"]),
                                    _number(means["all"])]) + " |")
  counts = {b: sorted({c.answered for (r, bb), c in report.cells.items() if bb == b}) for b in report.benchmarks}
  notes = [f"{b}: {', '.join(map(str, n))} questions answered" for b, n in counts.items()]
  lines += ["", "Scores in % (grounding: mIoU); (x%) is the score as a share of the uncompressed run's on the "
            "questions both answered; ⚠n: n failed questions, left out. " + "; ".join(notes) + "."]
  return "\n".join(lines) + "\n"


def csv_text(report: Report) -> str:
  """One CSV line per (row, benchmark) cell, with every field of the row and the cell."""
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(["backbone", "protocol", "method", "retention", "checkpoint", "dtype", "hyperparameters",
                   "benchmark", "score", "percent_of_uncompressed", "paired", "answered", "errors", "results"])
  for row in report.rows:
    for benchmark in report.benchmarks:
      cell = report.cells.get((row, benchmark))
      if cell is None:
        continue
      writer.writerow([row.backbone, row.protocol, row.method, f"{row.retention:g}", row.checkpoint, row.dtype,
                       row.hyperparameters, benchmark, _number(cell.score, 4), _number(cell.percent, 4), cell.paired,
                       cell.answered, cell.errors, cell.path])
  return buffer.getvalue()


def plot(report: Report, path: str) -> None:
  """One panel per benchmark: "% of uncompressed" against retention, one line per method and backbone.

  Raises:
    ImportError: matplotlib is not installed (``pip install matplotlib``).
    ValueError: no cell has a baseline to plot against.
  """
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  benchmarks = [b for b in report.benchmarks if any(c.percent is not None for (r, bb), c in report.cells.items()
                                                    if bb == b and not r.uncompressed)]
  if not benchmarks:
    raise ValueError("nothing to plot: no compressed run has its uncompressed baseline in the folder")
  figure, axes = plt.subplots(1, len(benchmarks), figsize=(4 * len(benchmarks), 3.4), squeeze=False)
  labels = report.labels()
  for axis, benchmark in zip(axes[0], benchmarks):
    lines: dict = {}
    for row in report.rows:
      cell = report.cells.get((row, benchmark))
      if row.uncompressed or cell is None or cell.percent is None:
        continue
      name = labels[row].replace(f" {row.retention:g} ", " ")
      lines.setdefault(name, []).append((row.retention, cell.percent))
    for name, points in sorted(lines.items()):
      points.sort()
      axis.plot([100 * r for r, _ in points], [p for _, p in points], marker="o", label=name)
    axis.axhline(100.0, color="grey", linewidth=0.8, linestyle="--")
    axis.set_title(benchmark)
    axis.set_xlabel("retention (%)")
    axis.set_ylabel("% of uncompressed")
  axes[0][0].legend(fontsize=7)
  figure.tight_layout()
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  figure.savefig(path, dpi=120)
  plt.close(figure)
