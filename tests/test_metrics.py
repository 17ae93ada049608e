"""Records and aggregates against lmms-eval 0.7.3's process_results and aggregation functions."""

import dataclasses
import random
import re

import numpy as np
import pytest

from ottvid_jax.eval import metrics, parsers
from ottvid_jax.eval.parsers import Parser
from ottvid_jax.eval.sample import Sample
from tests.test_parsers import OPTION_SETS, RESPONSES, SPAN_RESPONSES, ref


class _Log:
  """Collects what a reference aggregate logs."""

  def __init__(self):
    self.lines = []

  def info(self, message):
    self.lines.append(message)

  def warning(self, message):
    self.lines.append(message)


def _mc_sample(i, benchmark, task, options, answer, **kwargs):
  return Sample(id=f"{benchmark}/{i}", benchmark=benchmark, task=task, video=f"/data/{i}.mp4", question=f"q{i}",
                options=tuple(options), answer=answer, **kwargs)


def _deterministic(sample, response):
  return not parsers.parse(sample, response).fallback


def test_mvbench_per_subtask_and_mean():
  mv = ref("mvbench")
  rng = random.Random(0)
  tasks = ("action_count", "object_shuffle", "scene_transition")
  records, results = [], {t: [] for t in tasks}
  for i in range(600):
    task = tasks[i % 3]
    options = OPTION_SETS[i % 4][:3 + i % 3]
    gold = rng.randrange(len(options))
    response = rng.choice(RESPONSES + ["", "", "(A)", "B"])
    doc = {"candidates": list(options), "answer": options[gold], "question": "q", "video": "v"}
    results[task].append(mv.mvbench_process_results(doc, [response])["mvbench_accuracy"])
    records.append(metrics.record(_mc_sample(i, "mvbench", task, options, "ABCDE"[gold]), response))
    assert records[-1]["correct"] == bool(results[task][-1]["score"])
  ours = metrics.aggregate("mvbench", records)
  expected = {t: mv.mvbench_aggregate_results(results[t]) for t in tasks}
  assert ours["tasks"] == pytest.approx(expected, abs=1e-12) and ours["reported"] == ours["tasks"]
  assert ours["overall"] == pytest.approx(sum(expected.values()) / 3)
  empty = sum(r["response"] == "" for r in records)
  assert empty > 0 and sum(ours["answered"].values()) == 600 - empty


def _videomme_rows(rng, n):
  groups = metrics.VIDEOMME_GROUPS
  for i in range(n):
    yield i, {name: rng.choice(values) for name, values in groups.items()}, rng.choice("ABCD")


def test_videomme_overall_and_groups(monkeypatch):
  vm = ref("videomme")
  log = _Log()
  monkeypatch.setattr(vm, "eval_logger", log)
  rng = random.Random(1)
  records, results = [], []
  for parser in (Parser.LMMS_EVAL,):
    for i, fields, gold in _videomme_rows(rng, 900):
      response = rng.choice(RESPONSES)
      doc = {"question_id": str(i), "duration": fields["duration"], "domain": fields["domain"],
             "sub_category": fields["sub_category"], "task_type": fields["task_type"], "answer": gold, "videoID": "v"}
      results.append(vm.videomme_process_results(doc, [response])["videomme_perception_score"])
      sample = _mc_sample(i, "videomme", fields["duration"], OPTION_SETS[0][:4], gold,
                          meta={k: fields[k] for k in ("domain", "sub_category", "task_type")})
      records.append(metrics.record(sample, response, parser))
  ours = metrics.aggregate("videomme", records)
  assert ours["overall"] == vm.videomme_aggregate_results(results) == ours["reported"]
  printed = {}
  for line in log.lines:
    match = re.match(r"Evaluation on (video Type|Categories|Video Sub Categories|Task Categories): (.*): +(\S+)%$",
                     line)
    if match:
      printed[(match[1], match[2])] = float(match[3])
  names = {"video Type": "duration", "Categories": "domain", "Video Sub Categories": "sub_category",
           "Task Categories": "task_type"}
  assert len(printed) == sum(len(v) for v in metrics.VIDEOMME_GROUPS.values())
  for (kind, value), percent in printed.items():
    assert round(ours[names[kind]][value]["accuracy"], 1) == percent, (kind, value)
  # the substring rule: "Multilingual" is both a domain and a sub-category
  multi = [r for r in records if "Multilingual" in (r["domain"], r["sub_category"])]
  assert ours["domain"]["Multilingual"]["questions"] == len(multi)


def test_videomme_v0_7_1_records():
  sample = _mc_sample(0, "videomme", "short", OPTION_SETS[0][:4], "A",
                      meta={"domain": "Knowledge", "sub_category": "Law", "task_type": "OCR Problems"})
  assert metrics.record(sample, "Answer: C", Parser.LMMS_EVAL_0_7_1)["correct"]  # the "A" of "Answer"
  assert not metrics.record(sample, "Answer: C", Parser.LMMS_EVAL)["correct"]


def test_mlvu_macro_over_seven_tasks():
  ml = ref("mlvu")
  rng = random.Random(2)
  tasks = ("anomaly_reco", "count", "ego", "needle", "order", "plotQA")  # topic_reasoning left empty
  names = {"needle": ("2_needle", "findNeedle", "needle"), "plotQA": ("1_plotQA", "plotQA")}
  records, results = [], []
  for i in range(500):
    task = tasks[i % len(tasks)]
    gold = rng.choice("ABCD")
    response = rng.choice(RESPONSES)
    results.append(ml.mlvu_process_results({"question": f"q{i}", "task_type": task, "answer": gold}, [response])
                   ["mlvu_percetion_score"])
    sample = _mc_sample(i, "mlvu_dev", rng.choice(names.get(task, (task,))), OPTION_SETS[1][:4], gold)
    records.append(metrics.record(sample, response))
  ours = metrics.aggregate("mlvu_dev", records)
  assert ours["overall"] == pytest.approx(ml.mlvu_aggregate_results_dev(results), abs=1e-12)
  assert ours["tasks"]["topic_reasoning"] == 0 and len(ours["tasks"]) == 7
  assert ours["overall"] == pytest.approx(sum(ours["tasks"][t] for t in tasks) / 7)
  with pytest.raises(ValueError):
    metrics.aggregate("mlvu_dev", [metrics.record(_mc_sample(0, "mlvu_dev", "sports", "abcd", "A"), "A")])


def test_longvideobench_overall_and_groups(monkeypatch):
  lvb = ref("longvideobench")
  log = _Log()
  monkeypatch.setattr(lvb, "eval_logger", log)
  rng = random.Random(3)
  records, results = [], []
  while len(records) < 700:
    i = len(records)
    count = rng.choice((4, 5))
    options = OPTION_SETS[i % 4][:count]
    gold = rng.randrange(count)
    sample = _mc_sample(i, "longvideobench", rng.choice(("S2E", "T3O", "E2O", "TOS")), options, "ABCDE"[gold],
                        meta={"duration_group": rng.choice((15, 60, 600, 3600))})
    response = rng.choice(RESPONSES)
    if not _deterministic(sample, response):
      continue
    doc = {"id": sample.id, "duration_group": sample.meta["duration_group"], "question_category": sample.task,
           "correct_choice": gold, **{f"option{k}": (options[k] if k < count else "N/A") for k in range(5)}}
    results.append(lvb.longvideobench_process_results(doc, [response])["lvb_acc"])
    records.append(metrics.record(sample, response))
  ours = metrics.aggregate("longvideobench", records)
  assert ours["reported"] == lvb.longvideobench_aggregate_results(results)
  printed = log.lines[-1]
  for group in ("duration_groups", "categories"):
    for name, percent in ours[group].items():
      key = int(name) if name.isdigit() else name
      assert round(percent / 100, 5) == printed[key]["acc"]
  assert ours["overall"] == pytest.approx(100 * sum(r["correct"] for r in records) / len(records))


def test_egoschema_subset_score():
  ego = ref("egoschema")
  rng = random.Random(4)
  records, results = [], []
  while len(records) < 500:
    i = len(records)
    options = OPTION_SETS[i % 4]
    gold = rng.randrange(5)
    sample = _mc_sample(i, "egoschema", "egoschema", options, "ABCDE"[gold])
    response = rng.choice(RESPONSES)
    if not _deterministic(sample, response):
      continue
    doc = {"option": [f"{k}. {o}" for k, o in zip("ABCDE", options)], "video_idx": sample.id,
           "answer": rng.choice((gold, str(gold)))}
    results.append(ego.egoschema_process_results_generation(doc, [response])["score"])
    records.append(metrics.record(sample, response))
  ours = metrics.aggregate("egoschema", records)
  assert ours["reported"] == ego.egoschema_aggregate_score(results, None)
  assert ours["overall"] == pytest.approx(100 * ours["reported"])


def _grounding_set(rng):
  videos = [f"V{i:04d}" for i in range(40)]
  queries = ("person turn a light on", "a person opens the door", "someone is eating a sandwich")
  items = []
  for i in range(400):
    video, query = rng.choice(videos), rng.choice(queries)
    start = round(rng.uniform(0, 25), 1)
    span = (start, round(start + rng.uniform(1.5, 12), 1))
    items.append((i, video, query, span, rng.choice(SPAN_RESPONSES)))
  items += [(400 + j, v, q, s, rng.choice(SPAN_RESPONSES)) for j, (_, v, q, s, _) in enumerate(items[:30])]
  return items


def test_charades_sta_equals_lmms_eval(monkeypatch):
  ch = ref("charades_sta")
  monkeypatch.setattr(ch, "eval_logger", _Log())
  rng = random.Random(5)
  records, results = [], []
  for i, video, query, span, response in _grounding_set(rng):
    stored = [float(np.float16(t)) for t in span]  # lmms-eval/charades_sta's timestamps are float16
    doc = {"video": f"{video}.mp4", "caption": query, "timestamp": stored}
    results.append(ch.temporal_grounding_process_results_generation(doc, [response]))
    sample = Sample(id=f"c{i}", benchmark="charades_sta", task="charades_sta", video=f"/d/Charades_v1_480/{video}.mp4",
                    question="cleaned", span=span, meta={"caption": query, "lmms_eval_span": stored})
    records.append(metrics.record(sample, response))
  ours = metrics.aggregate("charades_sta", records)
  for metric, name in (("IOU@3", "R1@0.3"), ("IOU@5", "R1@0.5"), ("IOU@7", "R1@0.7"), ("mIOU", "mIoU")):
    aggregate = getattr(ch, f"temporal_grounding_aggregate_{metric.lower().replace('@', '')}")
    expected = aggregate([r[f"charades_sta_{metric}"] for r in results], None)
    assert ours[name] == pytest.approx(expected, abs=1e-9) and ours["reported"][metric] == ours[name]
  assert ours["unique"] == 400 and ours["questions"] == 430  # repeated keys collapse
  assert 0 < ours["mIoU"] < 100


@pytest.mark.parametrize("name", ["charades_timelens", "activitynet_timelens", "qvhighlights_timelens"])
def test_timelens_equals_lmms_eval(name):
  tl = ref("timelens")
  rng = random.Random(6)
  records, results = [], []
  for i, video, query, span, response in _grounding_set(rng):
    doc = {"video_path": f"{name.split('_')[0]}/{video}.mp4", "query": query, "span": [list(span)]}
    results.append(tl.timelens_process_results(doc, [response]))
    sample = Sample(id=f"t{i}", benchmark=name, task=name, video=f"/d/videos/{video}.mp4", question=query,
                    span=span, duration=40.0)
    records.append(metrics.record(sample, response))
  ours = metrics.aggregate(name, records)
  for metric, key in (("IOU@3", "R1@0.3"), ("IOU@5", "R1@0.5"), ("IOU@7", "R1@0.7"), ("mIOU", "mIoU")):
    aggregate = getattr(tl, f"timelens_aggregate_{metric.lower().replace('@', '')}")
    expected = aggregate([r[f"timelens_{metric}"] for r in results], None)
    assert ours[key] == pytest.approx(expected, abs=1e-9)
  assert ours["unique"] == 400 and ours["overall"] == ours["mIoU"]


def test_timelens_official():
  def sample(i, video, span, duration=30.0):
    return Sample(id=str(i), benchmark="charades_timelens", task="t", video=f"/v/{video}.mp4", question="q",
                  span=span, duration=duration)

  records = [metrics.record(sample(0, "a", (2.0, 8.0)), "The event happens in 2.4 - 7.6 seconds.", Parser.TIMELENS),
             metrics.record(sample(1, "b", (0.0, 10.0)), "I don't know.", Parser.TIMELENS),
             metrics.record(sample(2, "c", (10.0, 20.0)), "15 - 25", Parser.TIMELENS),
             metrics.record(sample(3, "d", (10.0, 20.0)), "20 - 15", Parser.TIMELENS),
             metrics.record(sample(4, "c", (10.0, 20.0)), "10.4 - 19.6", Parser.TIMELENS)]  # repeats key of 2
  assert records[0]["parsed"] == [2.0, 8.0] and records[0]["iou"] == 1.0
  assert records[1]["parsed"] == [40.0, 50.0] and records[1]["fallback"] and records[1]["iou"] == 0.0
  assert records[2]["iou"] == pytest.approx(5 / 15)
  assert records[3]["iou"] == 0.0
  ours = metrics.aggregate("charades_timelens", records)
  assert ours["unique"] == 4 and ours["mIoU"] == pytest.approx(100 * (1 + 0 + 1 + 0) / 4)
  assert ours["reported"] == {"IOU 0.3": 50.0, "IOU 0.5": 50.0, "IOU 0.7": 50.0, "mIOU": 50.0}
  with pytest.raises(ValueError):
    metrics.aggregate("charades_timelens", records + [metrics.record(sample(5, "e", (1.0, 2.0)), "1 - 2")])


def test_errors_and_paired_percent():
  rng = random.Random(7)
  samples = [_mc_sample(i, "egoschema", "egoschema", OPTION_SETS[0], rng.choice("ABCDE")) for i in range(60)]
  base = [metrics.record(s, rng.choice(("A", "B", "C", "(D)", "E."))) for s in samples[:55]]
  base[3] = metrics.record(samples[3], None, error="decode failed")
  run = [metrics.record(s, rng.choice(("A", "B", "C"))) for s in samples[5:]]
  run[0] = metrics.record(samples[5], None, error="out of memory")
  assert metrics.aggregate("egoschema", base)["errors"] == 1
  paired = metrics.paired_percent(run, base)
  ids = {s.id for s in samples[6:55]}
  assert paired["paired"] == len(ids) == 49 and paired["run_ids"] == 55 and paired["baseline_ids"] == 55
  value = metrics.aggregate("egoschema", [r for r in run if r["id"] in ids])["overall"]
  reference = metrics.aggregate("egoschema", [r for r in base if r["id"] in ids])["overall"]
  assert paired["value"] == value and paired["baseline"] == reference
  assert paired["ratio"] == pytest.approx(100 * value / reference)
  assert paired["coverage"] == (49 / 55, 49 / 55)
  with pytest.raises(ValueError):
    metrics.paired_percent(run, [metrics.record(_mc_sample(0, "mvbench", "x", "ab", "A"), "A")])
  with pytest.raises(ValueError):
    metrics.record(samples[0], None)


def test_record_fields():
  sample = _mc_sample(0, "longvideobench", "S2E", OPTION_SETS[0][:4], "B", meta={"duration_group": 600})
  drawn = metrics.record(sample, "no idea")
  assert drawn["fallback"] and drawn["fallback_seed"] == parsers.fallback_seed(sample.id)
  assert drawn["parsed"] in "ABCD" and drawn["duration_group"] == 600 and drawn["error"] is None
  span = Sample(id="s", benchmark="charades_sta", task="charades_sta", video="/x/AB12.mp4", question="q.",
                span=(1.0, 4.0))
  rec = metrics.record(span, "The event happens in 4 - 2 seconds.")
  assert rec["parsed"] == [2.0, 4.0] and rec["iou"] == pytest.approx(2 / 3)
  assert rec["key"] == "AB12.mp4>>>q.>>>[1.0, 4.0]"
  assert metrics.record(span, "nothing")["parsed"] is None
  stored = dataclasses.replace(span, meta={"lmms_eval_span": [0.99951171875, 4.0]})
  assert metrics.record(stored, "1 - 4")["span"] == [0.99951171875, 4.0]
  assert metrics.record(stored, "1 - 4")["key"] == "AB12.mp4>>>q.>>>[0.99951171875, 4.0]"


def test_variants_score_as_their_benchmark():
  sample = _mc_sample(0, "longvideobench_i", "S2E", OPTION_SETS[0][:4], "B", meta={"duration_group": 60})
  records = [metrics.record(sample, "B"), metrics.record(dataclasses.replace(sample, id="1"), "C")]
  ours = metrics.aggregate("longvideobench_i", records)
  assert ours["benchmark"] == "longvideobench_i" and ours["overall"] == 50.0 and ours["categories"] == {"S2E": 50.0}
