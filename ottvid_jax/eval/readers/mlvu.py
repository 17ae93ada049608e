"""MLVU dev: the official ``json/<n>_<task>.json`` release, or lmms-eval's ``sy1998/MLVU_dev`` repackaging.

* official (``MLVU/MVLU``): rows ``{video, duration, question, candidates,
  answer (text), question_type}``, videos ``video/<n>_<task>/<video>``; the
  open-ended ``8_sub_scene`` and ``9_summary`` are skipped (excluded).
* lmms-eval (``sy1998/MLVU_dev``, read only by ``mlvu/utils.py``; its file name
  is not documented): ``*.parquet`` / ``*.json`` / ``*.jsonl`` at the top,
  under ``mlvu/`` or ``data/``, rows ``{video_name, question (options
  embedded as "(A) ..." lines), answer (letter), task_type}``; videos at
  ``<video_name>`` (``mlvu_doc_to_visual_dev``), else ``video/<video_name>``.

The task is lmms-eval's task type (plotQA, needle, ego, count, order,
anomaly_reco, topic_reasoning): the file name without its number in the
official layout.
"""

from __future__ import annotations

import glob
import os
import re

from ottvid_jax.eval.readers.files import first_file, is_number, layout_error, read_rows
from ottvid_jax.eval.readers.result import ReadResult, Reading, Skip
from ottvid_jax.eval.sample import LETTERS

__all__ = ["MC_TASKS", "OPEN_ENDED", "read", "split_options"]

# mlvu/utils.py::mlvu_aggregate_results_dev TASK_TYPES, by official file
MC_TASKS = {"1_plotQA": "plotQA", "2_needle": "needle", "3_ego": "ego", "4_count": "count", "5_order": "order",
            "6_anomaly_reco": "anomaly_reco", "7_topic_reasoning": "topic_reasoning"}
OPEN_ENDED = {"8_sub_scene": "sub_scene", "9_summary": "summary"}
OFFICIAL = "official"
LMMS = "lmms-eval"
EXPECTED = (
    "json/<n>_<task>.json (json/1_plotQA.json ... json/9_summary.json) with videos video/<n>_<task>/ [official]",
    "a *.parquet, *.json or *.jsonl table with video_name, question, answer and task_type columns at the top, "
    "under mlvu/ or under data/ [lmms-eval sy1998/MLVU_dev]",
)
_LMMS_COLUMNS = ("video_name", "question", "answer", "task_type")
_OPTION = re.compile(r"^\(([A-Z])\)\s?(.*)$")


def split_options(text: str):
  """``(question, options)`` of a question with embedded ``"(A) ..."`` lines, or None when it has none.

  The question is the text before the first option line, without a leading
  ``Question:`` and a trailing ``Options:`` line; the option letters must run
  A, B, C... in order.
  """
  lines = text.split("\n")
  first = next((i for i, line in enumerate(lines) if _OPTION.match(line.strip())), None)
  if first is None:
    return None
  options = []
  for line in lines[first:]:
    if not line.strip():
      continue
    match = _OPTION.match(line.strip())
    if match is None or match.group(1) != LETTERS[len(options):len(options) + 1]:
      return None
    options.append(match.group(2).strip())
  head = list(lines[:first])
  while head and not head[-1].strip():
    head.pop()
  if head and head[-1].strip().lower() == "options:":
    head.pop()
  question = "\n".join(head).strip()
  question = re.sub(r"^question:\s*", "", question, flags=re.IGNORECASE)
  return question, tuple(options)


def _official(root: str, files: list) -> ReadResult:
  reading = Reading("mlvu_dev", OFFICIAL)
  for path in files:
    name = os.path.basename(path)
    stem = os.path.splitext(name)[0]
    if stem not in MC_TASKS and stem not in OPEN_ENDED:
      reading.skip(Skip.UNKNOWN_TASK, f"json/{name}: not an MLVU dev task")
      continue
    try:
      rows = read_rows(path)
    except ValueError as err:
      reading.skip(Skip.CORRUPT_FILE, f"json/{name}: {err}")
      continue
    if stem in OPEN_ENDED:
      reading.skip(Skip.OPEN_ENDED, f"json/{name}: {len(rows)} open-ended questions", count=len(rows))
      continue
    task = MC_TASKS[stem]
    for index, row in enumerate(rows):
      where = f"json/{name}[{index}]"
      if not (isinstance(row, dict) and isinstance(row.get("video"), str) and isinstance(row.get("question"), str)
              and isinstance(row.get("candidates"), list) and 0 < len(row["candidates"]) <= len(LETTERS)
              and all(isinstance(c, str) for c in row["candidates"]) and "answer" in row):
        reading.skip(Skip.CORRUPT_ENTRY, f"{where}: needs video, question, candidates and answer")
        continue
      candidates = row["candidates"]
      if row["answer"] not in candidates:
        reading.skip(Skip.ANSWER_NOT_AMONG_CANDIDATES, f"{where}: {row['answer']!r}")
        continue
      video = os.path.join(root, "video", stem, row["video"])
      if not os.path.isfile(video):
        reading.skip(Skip.MISSING_VIDEO, f"{where}: video/{stem}/{row['video']}")
        continue
      reading.add(id=f"{stem}/{row['video']}/{index}", task=task, video=video, question=row["question"],
                  options=candidates, answer=LETTERS[candidates.index(row["answer"])], row=row,
                  duration=float(row["duration"]) if is_number(row.get("duration")) else None,
                  meta={"question_type": row.get("question_type")})
  return reading.result()


def _lmms_tables(root: str) -> list:
  tables = []
  for folder in ("", "mlvu", "data"):
    for ext in ("parquet", "json", "jsonl"):
      for path in sorted(glob.glob(os.path.join(root, folder, f"*.{ext}"))):
        try:
          rows = read_rows(path)
        except (ValueError, OSError):
          continue
        if rows and isinstance(rows[0], dict) and all(k in rows[0] for k in _LMMS_COLUMNS):
          tables.append((path, rows))
  return tables


def _lmms(root: str, tables: list) -> ReadResult:
  reading = Reading("mlvu_dev", LMMS)
  known = set(MC_TASKS.values())
  for path, rows in tables:
    name = os.path.relpath(path, root)
    for index, row in enumerate(rows):
      where = f"{name}[{index}]"
      if not (isinstance(row, dict) and all(isinstance(row.get(k), str) for k in _LMMS_COLUMNS)):
        reading.skip(Skip.CORRUPT_ENTRY, f"{where}: needs video_name, question, answer and task_type")
        continue
      task = row["task_type"]
      if task in OPEN_ENDED.values():
        reading.skip(Skip.OPEN_ENDED, f"{where}: {task}")
        continue
      if task not in known:  # mlvu_aggregate_results_dev has no category for it
        reading.skip(Skip.UNKNOWN_TASK, f"{where}: {task}")
        continue
      parsed = split_options(row["question"])
      candidates = row.get("candidates")
      if parsed is None and isinstance(candidates, list) and candidates and all(isinstance(c, str) for c in candidates):
        parsed = (row["question"], tuple(candidates))
      if parsed is None or not 0 < len(parsed[1]) <= len(LETTERS):
        reading.skip(Skip.CORRUPT_ENTRY, f"{where}: no (A) ... option lines in the question")
        continue
      question, options = parsed
      answer = row["answer"].strip().strip("()")
      if answer not in LETTERS[:len(options)] or not answer:
        answer = LETTERS[options.index(row["answer"])] if row["answer"] in options else None
      if answer is None:
        reading.skip(Skip.ANSWER_NOT_AMONG_CANDIDATES, f"{where}: {row['answer']!r}")
        continue
      # mlvu_doc_to_visual_dev joins video_name to the data root; video/ is a fallback of this reader
      video = first_file([os.path.join(root, row["video_name"]), os.path.join(root, "video", row["video_name"])])
      if video is None:
        reading.skip(Skip.MISSING_VIDEO, f"{where}: {row['video_name']}")
        continue
      ident = row.get("question_id")
      reading.add(id=str(ident) if isinstance(ident, (str, int)) else f"{task}/{row['video_name']}/{index}",
                  task=task, video=video, question=question, options=options, answer=answer, row=row,
                  duration=float(row["duration"]) if is_number(row.get("duration")) else None,
                  meta={"lmms_question": row["question"]})
  return reading.result()


def read(root: str) -> ReadResult:
  """Reads an MLVU dev release (either layout) under ``root``."""
  files = sorted(glob.glob(os.path.join(root, "json", "*.json")))
  if any(os.path.splitext(os.path.basename(p))[0] in {**MC_TASKS, **OPEN_ENDED} for p in files):
    return _official(root, files)
  tables = _lmms_tables(root)
  if tables:
    return _lmms(root, tables)
  raise layout_error("mlvu_dev", EXPECTED, root)
