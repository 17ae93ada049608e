"""The resumable evaluation loop and the summary of a results file.

:func:`evaluate` answers every question not yet in the results file (see
:mod:`ottvid_jax.eval.results`: identity check, lock, torn-line repair) and
appends one scored record per question (:func:`ottvid_jax.eval.metrics.record`
plus what produced the answer). An exception while answering one question
becomes that question's error record, retried on the next run; Ctrl-C stops
after the record being written. :func:`summarise` scores the file's records
of the questions read, once each.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
import time
from typing import Callable, Optional, Sequence, Union

from ottvid_jax.eval import metrics
from ottvid_jax.eval.results import ResultsFile, RunIdentity, failed
from ottvid_jax.eval.sample import Sample

__all__ = ["RunOutcome", "evaluate", "summarise"]


@dataclasses.dataclass(frozen=True)
class RunOutcome:
  """What one call of :func:`evaluate` did.

  Attributes:
    records: every question's last record in the file after the run.
    answered: records written by this run (errors included).
    failed: of those, errors.
    interrupted: the run stopped on Ctrl-C.
    repaired_bytes: bytes of a torn last line cut away before appending.
  """

  records: list
  answered: int
  failed: int
  interrupted: bool
  repaired_bytes: int


def _answer_one(sample: Sample, answer: Callable, parser, base_seed: int) -> dict:
  start = time.perf_counter()
  try:
    response, extra = answer(sample)
    record = metrics.record(sample, response, parser, base_seed)
  except Exception as err:  # pylint: disable=broad-except  # one question's failure must not end the run
    record, extra = metrics.record(sample, None, parser, base_seed, error=f"{type(err).__name__}: {err}"), {}
  record.update(extra)
  record["seconds"] = time.perf_counter() - start
  return record


def evaluate(samples: Sequence[Sample], answer: Union[Callable, Sequence[Callable]], out_path: str,
             identity: RunIdentity, parser, *, progress=None, limit: Optional[int] = None, retry_errors: bool = True,
             base_seed: int = 0) -> RunOutcome:
  """Answers every sample not yet in ``out_path`` and appends one record per sample.

  Args:
    samples: the benchmark's questions (ids must be unique).
    answer: ``sample -> (response text, extra fields)``, or a list of them (one
      per device: samples are then spread over them, data parallel). Any
      exception marks that sample as an error (recorded; retried next run).
    out_path: the results file (created with its folder).
    identity: the run's identity (a file of another identity is refused).
    parser: the :class:`~ottvid_jax.eval.parsers.Parser` scoring the answers.
    progress: a ``rich.progress.Progress`` (shows an ETA), or None.
    limit: answer at most this many new samples (a later call resumes).
    retry_errors: answer again the questions whose last record is an error.
    base_seed: mixed into the parsers' random fallbacks.

  Raises:
    ValueError: for duplicate sample ids.
    IdentityMismatch, ResultsLocked: see :class:`~ottvid_jax.eval.results.ResultsFile`.
  """
  repeated = sorted(i for i, n in collections.Counter(s.id for s in samples).items() if n > 1)
  if repeated:
    raise ValueError(f"duplicate question ids {repeated[:5]}: a reader must make ids unique")
  workers = list(answer) if isinstance(answer, (list, tuple)) else [answer]
  with ResultsFile(out_path, identity, retry_errors=retry_errors) as results:
    todo = [s for s in samples if s.id not in results.done][:limit]
    task = progress.add_task("evaluating", total=len(todo)) if progress is not None else None
    lock, stop = threading.Lock(), threading.Event()
    counts = {"answered": 0, "failed": 0}
    queue = iter(todo)

    def work(respond):
      while not stop.is_set():
        with lock:
          sample = next(queue, None)
        if sample is None:
          return
        record = _answer_one(sample, respond, parser, base_seed)
        with lock:  # one whole line at a time, flushed to disk before the next
          results.append(record)
          counts["answered"] += 1
          counts["failed"] += failed(record)
          if task is not None:
            progress.update(task, advance=1)

    interrupted = False
    try:
      if len(workers) == 1:
        work(workers[0])
      else:  # device work releases the GIL: one thread per replica runs the devices concurrently
        with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
          futures = [pool.submit(work, w) for w in workers]
          try:
            for future in futures:
              while True:
                try:
                  future.result(timeout=0.5)
                  break
                except concurrent.futures.TimeoutError:
                  continue
          except KeyboardInterrupt:
            stop.set()
            raise
    except KeyboardInterrupt:
      interrupted = True
    return RunOutcome(results.records, counts["answered"], counts["failed"], interrupted, results.repaired_bytes)


def _as_wrong(record: dict) -> dict:
  """An error record scored as a wrong answer (for the score over all questions)."""
  if not failed(record):
    return record
  # A non-empty response: MVBench leaves only empty responses out of its denominator.
  out = dict(record, error=None, response="(no answer)", fallback=False)
  if "iou" in out:
    out.update(parsed=None, iou=0.0)
  else:
    out.update(parsed="(no answer)", correct=False)
  return out


def summarise(benchmark: str, samples: Sequence[Sample], records: Sequence[dict],
              baseline: Optional[Sequence[dict]] = None) -> dict:
  """Scores of a run over the questions read, each once, with its failures beside them.

  Args:
    benchmark: the registry name.
    samples: the questions read (records of other ids are left out and counted).
    records: the results file's records (:func:`~ottvid_jax.eval.results.read_results`).
    baseline: the uncompressed run's records, for "% of uncompressed" paired by question id.

  Returns:
    ``questions`` (read), ``answered``, ``errors``, ``pending`` (not yet answered),
    ``scores`` (over answered questions: :func:`~ottvid_jax.eval.metrics.aggregate`),
    ``scores_over_all`` (errors counted wrong; pending left out), ``first_errors``,
    ``not_in_benchmark``, and ``percent_of_uncompressed`` with its coverage when a
    baseline is given.
  """
  wanted = {s.id for s in samples}
  mine = [r for r in records if r.get("id") in wanted]
  errors = [r for r in mine if failed(r)]
  out = {"benchmark": benchmark, "questions": len(wanted), "answered": len(mine) - len(errors),
         "errors": len(errors), "pending": len(wanted) - len(mine), "not_in_benchmark": len(records) - len(mine),
         "first_errors": [f"{r['id']}: {r['error']}" for r in errors[:3]]}
  answered = [r for r in mine if not failed(r)]
  out["scores"] = metrics.aggregate(benchmark, answered) if answered else None
  out["scores_over_all"] = metrics.aggregate(benchmark, [_as_wrong(r) for r in mine]) if mine else None
  if baseline is not None:
    base = [r for r in baseline if r.get("id") in wanted]
    paired = metrics.paired_percent(answered, base) if answered and base else None
    out["percent_of_uncompressed"] = paired
  return out
