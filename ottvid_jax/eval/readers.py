"""Benchmark annotations, read from each benchmark's released format.

Every reader returns ``(samples, problems)``: the samples it could read and one
line per annotation it had to skip (corrupt entry, missing video). Nothing is
fatal but an unreadable top-level file. Formats accepted (paths relative to
``--data``):

==================== ==========================================================================
benchmark            files
==================== ==========================================================================
mvbench              ``json/<task>.json``: ``[{video, question, candidates, answer}]``;
                     videos in ``video/<task>/`` or ``video/``
mlvu_dev             ``json/<n>_<task>.json``: as MVBench (plus ``question_type``)
videomme             ``*.json`` / ``*.jsonl`` / ``*.parquet`` rows with ``videoID``,
                     ``question_id``, ``question``, ``options`` (``"A. ..."``), ``answer``,
                     ``task_type``, ``duration``; videos in ``data/`` or ``videos/``
longvideobench       ``lvb_val.json``: ``[{id, video_path, question, candidates, correct_choice,
                     question_category}]``; videos in ``videos/``
egoschema            ``questions.json`` (``q_uid``, ``question``, ``option 0`` .. ``option 4``) and
                     ``subset_answers.json`` (``{q_uid: index}``); videos ``videos/<q_uid>.mp4``;
                     only questions with a public answer are read
charades_sta         ``charades_sta_test.txt``: ``VIDEO start end##sentence``; videos ``videos/``
charades_timelens,   ``*.json`` / ``*.jsonl`` rows with ``video``, ``query`` and ``span`` (or
activitynet_timelens ``timestamp``) ``[start, end]`` in seconds, optional ``duration``; videos
                     ``videos/``. (Our reading of the TimeLens-Bench release; inferred.)
==================== ==========================================================================
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Callable, Optional

__all__ = ["BENCHMARKS", "Sample", "read_benchmark"]

LETTERS = "ABCDEFGH"


@dataclasses.dataclass(frozen=True)
class Sample:
  """One question. ``options`` and ``answer`` (a letter) for multiple choice; ``span`` for grounding."""

  id: str
  video: str
  task: str
  question: str
  options: tuple[str, ...] = ()
  answer: Optional[str] = None
  span: Optional[tuple[float, float]] = None

  @property
  def grounding(self) -> bool:
    return self.span is not None


def _load_json(path: str):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _records(path: str, problems: list) -> list:
  """Rows of a JSON list, a JSONL file (corrupt lines reported and skipped) or a parquet table."""
  if path.endswith(".jsonl"):
    rows = []
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          rows.append(json.loads(line))
        except json.JSONDecodeError as err:
          problems.append(f"{os.path.basename(path)}:{number}: corrupt line ({err.msg})")
    return rows
  if path.endswith(".parquet"):
    try:
      import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
    except ImportError as err:
      raise ValueError(f"{path} is parquet: pip install pyarrow, or give the JSON release") from err
    return pq.read_table(path).to_pylist()
  data = _load_json(path)
  return data if isinstance(data, list) else list(data.values())


def _video(data: str, folders: tuple[str, ...], name: str) -> Optional[str]:
  for folder in folders:
    path = os.path.join(data, folder, name)
    if os.path.isfile(path):
      return path
  return None


def _collect(rows, make: Callable, problems: list, where: str) -> list:
  samples = []
  for number, row in enumerate(rows):
    try:
      sample = make(row)
    except (KeyError, TypeError, ValueError, IndexError) as err:
      problems.append(f"{where}[{number}]: unreadable entry ({type(err).__name__}: {err})")
      continue
    if sample.video is None or not os.path.isfile(sample.video):
      problems.append(f"{where}[{number}]: missing video for {sample.id}")
      continue
    samples.append(sample)
  return samples


def _candidates_json(data: str, problems: list) -> list:
  files = sorted(glob.glob(os.path.join(data, "json", "*.json")))
  if not files:
    raise ValueError(f"no json/*.json annotation files under {data!r}")
  samples = []
  for path in files:
    task = os.path.splitext(os.path.basename(path))[0]

    def make(row, task=task):
      candidates = [str(c) for c in row["candidates"]]
      return Sample(id=f"{task}/{row['video']}/{row['question']}"[:300],
                    video=_video(data, (os.path.join("video", task), "video"), row["video"]),
                    task=row.get("question_type", task), question=str(row["question"]),
                    options=tuple(candidates), answer=LETTERS[candidates.index(str(row["answer"]))])

    try:
      rows = _records(path, problems)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
      problems.append(f"{os.path.basename(path)}: unreadable file ({err})")
      continue
    samples += _collect(rows, make, problems, os.path.basename(path))
  return samples


def _videomme(data: str, problems: list) -> list:
  files = sorted(p for ext in ("json", "jsonl", "parquet") for p in glob.glob(os.path.join(data, f"*.{ext}")))
  if not files:
    raise ValueError(f"no Video-MME annotation (*.json, *.jsonl, *.parquet) under {data!r}")

  def make(row):
    options = tuple(str(o)[3:] if str(o)[1:3] == ". " else str(o) for o in row["options"])
    return Sample(id=str(row["question_id"]), video=_video(data, ("data", "videos", "."), f"{row['videoID']}.mp4"),
                  task=f"{row.get('duration', 'all')}/{row.get('task_type', 'all')}", question=str(row["question"]),
                  options=options, answer=str(row["answer"]).strip()[0])

  return [s for path in files for s in _collect(_records(path, problems), make, problems, os.path.basename(path))]


def _longvideobench(data: str, problems: list) -> list:
  path = os.path.join(data, "lvb_val.json")
  if not os.path.isfile(path):
    raise ValueError(f"no lvb_val.json under {data!r}")

  def make(row):
    return Sample(id=str(row["id"]), video=_video(data, ("videos", "."), row["video_path"]),
                  task=str(row.get("question_category", "all")), question=str(row["question"]),
                  options=tuple(str(c) for c in row["candidates"]), answer=LETTERS[int(row["correct_choice"])])

  return _collect(_records(path, problems), make, problems, "lvb_val.json")


def _egoschema(data: str, problems: list) -> list:
  questions, answers = os.path.join(data, "questions.json"), os.path.join(data, "subset_answers.json")
  if not (os.path.isfile(questions) and os.path.isfile(answers)):
    raise ValueError(f"EgoSchema needs questions.json and subset_answers.json under {data!r}")
  known = _load_json(answers)

  def make(row):
    uid = row["q_uid"]
    return Sample(id=uid, video=_video(data, ("videos", "."), f"{uid}.mp4"), task="egoschema",
                  question=str(row["question"]), options=tuple(str(row[f"option {i}"]) for i in range(5)),
                  answer=LETTERS[int(known[uid])])

  rows = [r for r in _records(questions, problems) if isinstance(r, dict) and r.get("q_uid") in known]
  return _collect(rows, make, problems, "questions.json")


def _charades_sta(data: str, problems: list) -> list:
  path = os.path.join(data, "charades_sta_test.txt")
  if not os.path.isfile(path):
    raise ValueError(f"no charades_sta_test.txt under {data!r}")
  rows = []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      if line.strip():
        rows.append((number, line.strip()))

  def make(item):
    number, line = item
    head, sentence = line.split("##", 1)
    video, start, end = head.split()
    return Sample(id=f"{video}#{number}", video=_video(data, ("videos", "."), f"{video}.mp4"), task="charades_sta",
                  question=sentence.strip(), span=(float(start), float(end)))

  return _collect(rows, make, problems, "charades_sta_test.txt")


def _timelens(data: str, problems: list, task: str) -> list:
  files = sorted(p for ext in ("json", "jsonl") for p in glob.glob(os.path.join(data, f"*.{ext}")))
  if not files:
    raise ValueError(f"no TimeLens annotation (*.json, *.jsonl) under {data!r}")

  def make(row):
    span = row.get("span", row.get("timestamp"))
    start, end = float(span[0]), float(span[1])
    if not end >= start:
      raise ValueError(f"bad span {span}")
    return Sample(id=str(row.get("id", f"{row['video']}/{row['query']}"))[:300],
                  video=_video(data, ("videos", "."), row["video"]), task=task, question=str(row["query"]),
                  span=(start, end))

  return [s for path in files for s in _collect(_records(path, problems), make, problems, os.path.basename(path))]


BENCHMARKS: dict[str, Callable[[str, list], list]] = {
    "mvbench": _candidates_json,
    "mlvu_dev": _candidates_json,  # the same layout as MVBench
    "videomme": _videomme,
    "longvideobench": _longvideobench,
    "egoschema": _egoschema,
    "charades_sta": _charades_sta,
    "charades_timelens": lambda d, p: _timelens(d, p, "charades_timelens"),
    "activitynet_timelens": lambda d, p: _timelens(d, p, "activitynet_timelens"),
}


def read_benchmark(name: str, data: str) -> tuple[list[Sample], list[str]]:
  """``(samples, problems)`` of benchmark ``name`` under folder ``data``."""
  if name not in BENCHMARKS:
    raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
  if not os.path.isdir(data):
    raise ValueError(f"data folder {data!r} does not exist")
  problems: list[str] = []
  return BENCHMARKS[name](data, problems), problems
