"""Per-question records and the benchmark scores computed from them, as the references aggregate.

A record is a JSON-ready dict, made by :func:`record` from a sample and the
model's response (the runner stores one per question):

=============== ===========================================================================
field           meaning
=============== ===========================================================================
id              ``Sample.id``
benchmark       ``Sample.benchmark``
task            ``Sample.task`` (MLVU: normalised to the repackaging's task_type)
parser          the :class:`~ottvid_jax.eval.parsers.Parser` value used
response        the model's text as the wrapper returned it (None on error)
parsed          the letter / MVBench's processed answer, or ``[start, end]`` or None
fallback        whether ``parsed`` is the reference's fallback (random letter, TimeLens'
                out-of-video span)
fallback_seed   the random fallback's seed, else None
error           None, or why no answer was scored (the record then counts in no score)
answer          multiple choice: the correct letter
correct         multiple choice: whether the reference scores it right
span            grounding: the ground truth ``[start, end]`` the reference scores against
                (Charades-STA under lmms-eval: ``meta["lmms_eval_span"]``, the float16
                values of ``lmms-eval/charades_sta``, when the reader gives them)
iou             grounding: the IoU the reference computes (0 when nothing was parsed)
key             grounding: ``video>>>query>>>[start, end]``, the references' result key
duration, domain, sub_category, task_type
                videomme: ``Sample.task`` (short/medium/long) and ``meta`` ``domain``,
                ``sub_category``, ``task_type``
duration_group  longvideobench: ``meta["duration_group"]`` (``task`` is the question category)
=============== ===========================================================================

:func:`aggregate` returns, for every benchmark, ``overall`` (the headline
number, in %), ``questions`` (records scored), ``errors`` (records left out),
the benchmark's breakdowns, and ``reported``: exactly what the reference's
aggregation returns, in its own units (lmms-eval's LongVideoBench and
EgoSchema report fractions).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Iterable, Mapping, Optional, Sequence

from ottvid_jax.eval import parsers
from ottvid_jax.eval.parsers import Parser
from ottvid_jax.eval.prompts import TIMELENS, base_benchmark
from ottvid_jax.eval.sample import Sample

__all__ = ["MLVU_TASKS", "VIDEOMME_GROUPS", "aggregate", "paired_percent", "record"]

GROUNDING = ("charades_sta",) + TIMELENS

# videomme/utils.py: VIDEO_TYPE, CATEGORIES, SUB_CATEGORIES, TASK_CATEGORIES
VIDEOMME_GROUPS: dict[str, tuple[str, ...]] = {
    "duration": ("short", "medium", "long"),
    "domain": ("Knowledge", "Film & Television", "Sports Competition", "Artistic Performance", "Life Record",
               "Multilingual"),
    "sub_category": ("Humanity & History", "Literature & Art", "Biology & Medicine", "Finance & Commerce", "Astronomy",
                     "Geography", "Law", "Life Tip", "Technology", "Animation", "Movie & TV Show", "Documentary",
                     "News Report", "Esports", "Basketball", "Football", "Athletics", "Other Sports", "Stage Play",
                     "Magic Show", "Variety Show", "Acrobatics", "Handicraft", "Food", "Fashion", "Daily Life",
                     "Travel", "Pet & Animal", "Exercise", "Multilingual"),
    "task_type": ("Temporal Perception", "Spatial Perception", "Attribute Perception", "Action Recognition",
                  "Object Recognition", "OCR Problems", "Counting Problem", "Temporal Reasoning", "Spatial Reasoning",
                  "Action Reasoning", "Object Reasoning", "Information Synopsis"),
}

# mlvu/utils.py::mlvu_aggregate_results_dev: TASK_TYPES
MLVU_TASKS = ("anomaly_reco", "count", "ego", "needle", "order", "plotQA", "topic_reasoning")
# The official layout's names for them (json/<n>_<task>.json, question_type "findNeedle"); our mapping, inferred.
_MLVU_ALIASES = {"findNeedle": "needle"}


def _mlvu_task(task: str) -> str:
  head, _, tail = task.partition("_")
  if head.isdigit() and tail:  # "2_needle" -> "needle"
    task = tail
  return _MLVU_ALIASES.get(task, task)


def _truth(sample: Sample, parser: Parser) -> list[float]:
  if sample.benchmark == "charades_sta" and parser is not Parser.TIMELENS:
    # _temporal_grounding_compute_metrics reads the truth back from the result key: lmms-eval/charades_sta's
    # `timestamp`, which the dataset stores as float16 (the reader's meta["lmms_eval_span"])
    span = sample.meta.get("lmms_eval_span", sample.span)
  else:
    span = sample.span
  return [float(span[0]), float(span[1])]


def _key(sample: Sample, truth: Sequence[float]) -> str:
  query = sample.meta.get("caption", sample.question) if sample.benchmark == "charades_sta" else sample.question
  return f"{os.path.basename(sample.video)}>>>{query}>>>{list(truth)}"


def record(sample: Sample, response: Optional[str], parser: str = Parser.LMMS_EVAL, base_seed: int = 0,
           error: Optional[str] = None) -> dict[str, Any]:
  """The scored record of one question.

  Args:
    sample: the question.
    response: the model's answer (None when ``error`` is given).
    parser: :class:`~ottvid_jax.eval.parsers.Parser`.
    base_seed: mixed into random fallbacks' seeds (with the question id).
    error: why there is no answer (decode failure, ...): the record is kept
      but no score counts it.

  Returns:
    The record (fields: see the module docstring).
  """
  parser = Parser(parser)
  benchmark, _ = base_benchmark(sample.benchmark)
  out: dict[str, Any] = {"id": sample.id, "benchmark": sample.benchmark, "task": sample.task, "parser": parser.value,
                         "response": response, "parsed": None, "fallback": False, "fallback_seed": None,
                         "error": error}
  if benchmark == "mlvu_dev":
    out["task"] = _mlvu_task(sample.task)
  if benchmark == "videomme":
    out.update(duration=sample.task, domain=sample.meta.get("domain"), sub_category=sample.meta.get("sub_category"),
               task_type=sample.meta.get("task_type"))
  if benchmark == "longvideobench":
    out["duration_group"] = sample.meta.get("duration_group")
  grounding = benchmark in GROUNDING
  if grounding:
    truth = _truth(sample, parser)
    out.update(span=truth, iou=0.0, key=_key(sample, truth))
  else:
    out.update(answer=sample.answer, correct=False)
  if error is not None:
    return out
  if response is None:
    raise ValueError(f"{sample.id}: a record needs a response or an error")
  parsed = parsers.parse(sample, response, parser, base_seed)
  out.update(fallback=parsed.fallback, fallback_seed=parsed.seed)
  if not grounding:
    out.update(parsed=parsed.value, correct=parsed.value == sample.answer)
    return out
  gt = out["span"]
  if parsed.value is None:
    return out
  pred = [float(parsed.value[0]), float(parsed.value[1])]
  out["parsed"] = pred
  if parser is Parser.TIMELENS:
    out["iou"] = parsers.iou_timelens(gt, pred)  # compute_metrics.py: iou(gt_span, timestamps)
  else:
    out["iou"] = parsers.iou_lmms_eval(gt, pred)
  return out


def _percent(correct: float, total: int) -> float:
  return 100 * correct / total if total > 0 else 0


def _mvbench(rows: list) -> dict:
  tasks: dict[str, list] = defaultdict(list)
  for row in rows:
    tasks[row["task"]].append(row)
  scores, answered = {}, {}
  for task, items in sorted(tasks.items()):
    # mvbench_aggregate_results: an empty answer leaves the denominator (the raw text, not the parsed one)
    kept = [r for r in items if r["response"] != ""]
    answered[task] = len(kept)
    scores[task] = _percent(sum(bool(r["correct"]) for r in kept), len(kept))
  # lmms-eval reports each subtask (the group `mvbench` has no aggregate); papers quote their mean
  overall = sum(scores.values()) / len(scores) if scores else 0
  return {"overall": overall, "tasks": scores, "answered": answered, "reported": dict(scores)}


def _videomme(rows: list) -> dict:
  names = ("duration", "domain", "sub_category", "task_type")
  keys = ["_".join(str(r[n]) for n in names) for r in rows]
  groups = {}
  for field, values in VIDEOMME_GROUPS.items():
    groups[field] = {}
    for value in values:
      # videomme_aggregate_results: a group holds every result whose combined key contains its name
      members = [r for r, k in zip(rows, keys) if value in k]
      correct = sum(r["parsed"] == r["answer"] for r in members)
      groups[field][value] = {"accuracy": _percent(correct, len(members)), "questions": len(members)}
  overall = _percent(sum(r["parsed"] == r["answer"] for r in rows), len(rows))
  return {"overall": overall, **groups, "reported": overall}


def _mlvu(rows: list) -> dict:
  counts = {task: [0, 0] for task in MLVU_TASKS}
  for row in rows:
    if row["task"] not in counts:
      raise ValueError(f"{row['id']}: MLVU task {row['task']!r} is not one of {MLVU_TASKS}")
    counts[row["task"]][0] += row["parsed"] == row["answer"]
    counts[row["task"]][1] += 1
  tasks = {}
  for name in MLVU_TASKS:
    # mlvu_aggregate_results_dev: substring match of task names, and a task without questions scores 0
    correct = sum(c for k, (c, _) in counts.items() if name in k)
    total = sum(n for k, (_, n) in counts.items() if name in k)
    tasks[name] = _percent(correct, total)
  overall = sum(tasks.values()) / len(MLVU_TASKS)
  return {"overall": overall, "tasks": tasks, "questions_per_task": {k: n for k, (_, n) in counts.items()},
          "reported": overall}


def _longvideobench(rows: list) -> dict:
  subsets: dict[Any, list] = defaultdict(list)
  for row in rows:
    subsets[row["duration_group"]].append(row)
    subsets[row["task"]].append(row)
  accuracy = {k: sum(r["parsed"] == r["answer"] for r in v) / len(v) for k, v in subsets.items()}
  sizes = {k: len(v) for k, v in subsets.items()}
  # longvideobench_aggregate_results: the overall is the size-weighted mean over both groupings (each question twice)
  total = sum(sizes.values())
  overall = sum(accuracy[k] * sizes[k] for k in subsets) / total if total else 0
  durations, categories = {r["duration_group"] for r in rows}, {r["task"] for r in rows}
  return {"overall": 100 * overall,
          "duration_groups": {str(k): 100 * accuracy[k] for k in durations},
          "categories": {str(k): 100 * accuracy[k] for k in categories},
          "reported": round(overall, 5)}


def _egoschema(rows: list) -> dict:
  # egoschema_aggregate_score: a fraction of all questions
  fraction = sum(r["parsed"] == r["answer"] for r in rows) / len(rows) if rows else 0
  return {"overall": 100 * fraction, "reported": fraction}


def _grounding(rows: list, parser: Parser) -> dict:
  unique: dict[str, float] = {}
  for row in rows:
    # the references merge per-question dicts keyed video>>>query>>>span: a repeated key keeps the last answer
    unique[row["key"]] = float(row["iou"])
  ious = list(unique.values())
  n = len(ious)
  recall = {t: _percent(sum(v >= t for v in ious), n) for t in (0.3, 0.5, 0.7)}
  miou = _percent(sum(ious), n)
  out = {"overall": miou, **{f"R1@{t}": r for t, r in recall.items()}, "mIoU": miou, "unique": n}
  if parser is Parser.TIMELENS:
    out["reported"] = {"IOU 0.3": recall[0.3], "IOU 0.5": recall[0.5], "IOU 0.7": recall[0.7], "mIOU": miou}
  else:
    out["reported"] = {"IOU@3": recall[0.3], "IOU@5": recall[0.5], "IOU@7": recall[0.7], "mIOU": miou}
  return out


def aggregate(benchmark: str, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
  """A benchmark's scores from its records, as the reference aggregates them.

  ==================== ====================================================================
  benchmark            ``overall`` and breakdowns
  ==================== ====================================================================
  mvbench              mean over subtasks of the per-subtask accuracy, whose denominator
                       leaves out empty responses (``tasks``, ``answered``)
  videomme             accuracy over questions; ``duration``, ``domain``, ``sub_category``,
                       ``task_type`` groups as the reference prints them
  mlvu_dev             mean of the 7 task accuracies, a task without questions counting 0
  longvideobench       accuracy; ``duration_groups``, ``categories``
  egoschema            accuracy
  grounding sets       ``R1@0.3``, ``R1@0.5``, ``R1@0.7``, ``mIoU`` (also ``overall``) over
                       unique ``key`` s (a repeated key keeps its last record)
  ==================== ====================================================================

  Args:
    benchmark: the registry name.
    records: :func:`record` outputs of that benchmark; those with an
      ``error`` are counted in ``errors`` and left out.

  Returns:
    The scores (percent), ``questions``, ``errors`` and ``reported``.
  """
  rows = [dict(r) for r in records]
  wrong = {r["benchmark"] for r in rows} - {benchmark}
  if wrong:
    raise ValueError(f"records of {sorted(wrong)} given to the {benchmark} aggregate")
  scored = [r for r in rows if r.get("error") is None]
  name = benchmark
  benchmark, _ = base_benchmark(benchmark)
  if benchmark == "mvbench":
    out = _mvbench(scored)
  elif benchmark == "videomme":
    out = _videomme(scored)
  elif benchmark == "mlvu_dev":
    out = _mlvu(scored)
  elif benchmark == "longvideobench":
    out = _longvideobench(scored)
  elif benchmark == "egoschema":
    out = _egoschema(scored)
  elif benchmark in GROUNDING:
    kinds = {r["parser"] for r in scored}
    if len(kinds) > 1:
      raise ValueError(f"{benchmark} records mix parsers {sorted(kinds)}")
    out = _grounding(scored, Parser(kinds.pop()) if kinds else Parser.LMMS_EVAL)
  else:
    raise ValueError(f"unknown benchmark {benchmark!r}")
  return {"benchmark": name, "questions": len(scored), "errors": len(rows) - len(scored), **out}


def paired_percent(records: Sequence[Mapping[str, Any]], baseline_records: Sequence[Mapping[str, Any]],
                   key: str = "overall") -> dict[str, Any]:
  """A run's score as a percentage of a baseline's, on the questions both runs answered.

  Only ids present without ``error`` in both runs are scored, in both runs;
  the aggregate of each restricted run is computed with :func:`aggregate`.

  Args:
    records: the run's records (one benchmark).
    baseline_records: the baseline's (uncompressed) records, same benchmark.
    key: the top-level score of :func:`aggregate` to compare (``overall``,
      ``mIoU``, ``R1@0.7``, ...).

  Returns:
    ``ratio`` (100 · run / baseline, None when the baseline scores 0),
    ``value``, ``baseline``, ``paired`` (the number of ids scored), ``run_ids``
    and ``baseline_ids`` (ids in each run), ``coverage`` (paired / ids in each
    run).
  """
  benchmarks = {r["benchmark"] for r in list(records) + list(baseline_records)}
  if len(benchmarks) != 1:
    raise ValueError(f"paired_percent needs records of one benchmark, got {sorted(benchmarks)}")
  benchmark = benchmarks.pop()
  good = {r["id"] for r in records if r.get("error") is None}
  good_base = {r["id"] for r in baseline_records if r.get("error") is None}
  both = good & good_base
  run = aggregate(benchmark, [r for r in records if r["id"] in both and r.get("error") is None])
  base = aggregate(benchmark, [r for r in baseline_records if r["id"] in both and r.get("error") is None])
  value, reference = run[key], base[key]
  run_ids, base_ids = len({r["id"] for r in records}), len({r["id"] for r in baseline_records})
  return {"ratio": 100 * value / reference if reference else None, "value": value, "baseline": reference,
          "paired": len(both), "run_ids": run_ids, "baseline_ids": base_ids,
          "coverage": (len(both) / run_ids if run_ids else 0.0, len(both) / base_ids if base_ids else 0.0)}
