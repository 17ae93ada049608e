"""The resumable evaluation loop: one JSON line per question, appended as it comes.

An interrupted run resumes where it stopped (question ids already in the file are
skipped) and loses nothing; a question whose video cannot be read is written as
an error line and skipped; the summary is computed from the file, so it also
covers earlier runs.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import queue
import threading
import time
from typing import Callable, Optional, Sequence, Union

from ottvid_jax.eval import scoring
from ottvid_jax.eval.readers import Sample

__all__ = ["evaluate", "read_results", "summarise"]


def read_results(path: str) -> list[dict]:
  """The records of a results file (a half-written last line from an interruption is ignored)."""
  if not os.path.isfile(path):
    return []
  records = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return records


def _score(sample: Sample, response: str) -> dict:
  if sample.grounding:
    span = scoring.parse_span(response)
    return {"predicted": span, "target": list(sample.span), "iou": scoring.iou(span, sample.span) if span else 0.0}
  letter = scoring.parse_letter(response, len(sample.options))
  return {"predicted": letter, "target": sample.answer, "correct": letter == sample.answer}


def summarise(records: list[dict], baseline: Optional[list[dict]] = None) -> dict:
  """Accuracy per task (multiple choice) or mIoU and recalls (grounding), plus % of the baseline."""
  scored = [r for r in records if "error" not in r]
  grounding = any("iou" in r for r in scored)
  summary = scoring.grounding_metrics(scored) if grounding else scoring.mc_accuracy(scored)
  summary["errors"] = len(records) - len(scored)
  if baseline:
    base = summarise(baseline)
    key = "mIoU" if grounding else "overall"
    if base.get(key):
      summary["percent_of_uncompressed"] = 100.0 * summary[key] / base[key]
  return summary


def _record(sample: Sample, answer: Callable) -> dict:
  start = time.perf_counter()
  record = {"id": sample.id, "task": sample.task}
  try:
    response, extra = answer(sample)
    record.update(response=response, **_score(sample, response), **extra)
  except (ValueError, FileNotFoundError) as err:
    record["error"] = str(err)
  record["seconds"] = time.perf_counter() - start
  return record


def evaluate(samples: list[Sample], answer: Union[Callable, Sequence[Callable]], out_path: str,
             progress=None, limit: Optional[int] = None) -> list[dict]:
  """Answers every sample not yet in ``out_path`` and appends one record per sample.

  Args:
    samples: the benchmark's questions.
    answer: ``sample -> (response text, extra fields)``, or a list of them (one
      per device: samples are then spread over them, data parallel; each record
      is written once, as it completes). ``ValueError`` / ``FileNotFoundError``
      mark the sample as an error (recorded, skipped).
    out_path: the JSONL file (created with its folder).
    progress: a ``rich.progress.Progress`` (shows an ETA), or None.
    limit: answer at most this many new samples (then stop; a later call resumes).

  Returns:
    All records in the file after the run.
  """
  workers = list(answer) if isinstance(answer, (list, tuple)) else [answer]
  done = {r["id"] for r in read_results(out_path)}
  todo = [s for s in samples if s.id not in done][:limit]
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  task = progress.add_task("evaluating", total=len(todo)) if progress is not None else None
  pending = queue.Queue()
  for sample in todo:
    pending.put(sample)
  lock = threading.Lock()
  with open(out_path, "a", encoding="utf-8") as out:

    def work(respond):
      while True:
        try:
          sample = pending.get_nowait()
        except queue.Empty:
          return
        record = _record(sample, respond)
        with lock:  # one whole line at a time, flushed to disk before the next
          out.write(json.dumps(record) + "\n")
          out.flush()
          os.fsync(out.fileno())
          if task is not None:
            progress.update(task, advance=1)

    if len(workers) == 1:
      work(workers[0])
    else:  # device work releases the GIL: one thread per replica runs the devices concurrently
      with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
        for future in [pool.submit(work, w) for w in workers]:
          future.result()
  return read_results(out_path)
