"""The evaluation harness end to end: every benchmark format, a tiny model, real clips."""

import json
import os

import jax.numpy as jnp
import pytest

from ottvid_jax import cli, eval as evaluation, video
from ottvid_jax.answer import make_answerer
from tests import hf_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  return hf_tiny.save_tiny_qwen(str(tmp_path_factory.mktemp("tiny_qwen_eval")), seed=2)


def clip(folder, name):
  os.makedirs(os.path.dirname(folder / name), exist_ok=True)
  os.symlink(video.sample_clip("bikes")[0], folder / name)


def write(path, content):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(content if isinstance(content, str) else json.dumps(content))


def make_benchmark(name, root):
  """Annotations in each benchmark's own format: two good questions, one corrupt entry, one missing video."""
  d = root / name
  if name in ("mvbench", "mlvu_dev"):
    task = "action_sequence" if name == "mvbench" else "1_plotQA"
    clip(d, f"video/{task}/a.mp4")
    rows = [{"video": "a.mp4", "question": "what happens?", "candidates": ["run", "walk", "sit"], "answer": "walk"},
            {"video": "a.mp4", "question": "who?", "candidates": ["a", "b"], "answer": "a"},
            {"video": "a.mp4", "question": "bad", "candidates": ["x"], "answer": "not a candidate"},
            {"video": "gone.mp4", "question": "q", "candidates": ["x", "y"], "answer": "x"}]
    write(d / f"json/{task}.json", rows)
  elif name == "videomme":
    clip(d, "data/v1.mp4")
    rows = [{"videoID": "v1", "question_id": "1", "duration": "short", "task_type": "Counting",
             "question": "how many?", "options": ["A. one", "B. two", "C. three", "D. four"], "answer": "B"},
            {"videoID": "v1", "question_id": "2", "duration": "short", "task_type": "OCR", "question": "text?",
             "options": ["A. x", "B. y", "C. z", "D. w"], "answer": "D"},
            {"videoID": "v9", "question_id": "4", "question": "q", "options": ["A. a", "B. b"], "answer": "A"}]
    write(d / "videomme.jsonl", "\n".join(json.dumps(r) for r in rows[:2]) + "\n{broken json\n" +
          "\n".join(json.dumps(r) for r in rows[2:]) + "\n")
  elif name == "longvideobench":
    clip(d, "videos/x.mp4")
    rows = [{"id": "1", "video_path": "x.mp4", "question": "q1", "candidates": ["a", "b", "c", "d"],
             "correct_choice": 2, "question_category": "T3E"},
            {"id": "2", "video_path": "x.mp4", "question": "q2", "candidates": ["a", "b"], "correct_choice": 0},
            {"id": "3", "video_path": "x.mp4", "question": "q3"},
            {"id": "4", "video_path": "none.mp4", "question": "q", "candidates": ["a"], "correct_choice": 0}]
    write(d / "lvb_val.json", rows)
  elif name == "egoschema":
    clip(d, "videos/u1.mp4")
    clip(d, "videos/u2.mp4")
    options = {f"option {i}": f"o{i}" for i in range(5)}
    write(d / "questions.json", [{"q_uid": "u1", "question": "q", **options}, {"q_uid": "u2", "question": "q2",
                                 **options}, {"q_uid": "u3", "question": "x"}, {"q_uid": "u4", "question": "q", **options}])
    write(d / "subset_answers.json", {"u1": 3, "u2": 0, "u3": 1, "u4": 2})  # u4 has no video
  elif name == "charades_sta":
    clip(d, "videos/AB12.mp4")
    write(d / "charades_sta_test.txt", "AB12 1.0 4.5##a person opens a door.\nAB12 2 8##a person sits.\n"
          "corrupt line\nZZ99 0 1##missing video.\n")
  else:
    clip(d, "videos/c.mp4")
    rows = [{"video": "c.mp4", "query": "someone rides", "span": [1.0, 5.0], "duration": 10.0},
            {"video": "c.mp4", "query": "a bike turns", "timestamp": [6, 9]},
            {"video": "c.mp4", "query": "bad span", "span": [5, 1]},
            {"video": "lost.mp4", "query": "q", "span": [0, 1]}]
    write(d / "annotations.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
  return str(d)


@pytest.mark.parametrize("name", sorted(evaluation.BENCHMARKS))
def test_every_format_end_to_end(name, tmp_path, checkpoint):
  data = make_benchmark(name, tmp_path)
  samples, problems = evaluation.read_benchmark(name, data)
  assert len(samples) == 2, problems
  assert len(problems) == 2 and any("missing video" in p for p in problems)
  answer = make_answerer(checkpoint, "ottvid", 0.25, frames=4, dtype=jnp.float32)
  out = str(tmp_path / "results" / f"{name}.jsonl")
  records = evaluation.evaluate(samples, answer, out, limit=1)  # interrupted after one question
  assert len(records) == 1
  records = evaluation.evaluate(samples, answer, out)  # resumes: the second only
  assert [r["id"] for r in records] == [s.id for s in samples]
  assert evaluation.evaluate(samples, answer, out) == records  # nothing left to do
  summary = evaluation.summarise(records, baseline=records)
  if samples[0].grounding:
    assert set(summary) >= {"mIoU", "R1@0.3", "R1@0.5", "R1@0.7"}
    assert all(0.0 <= r["iou"] <= 1.0 for r in records)
  else:
    assert 0.0 <= summary["overall"] <= 100.0 and summary["tasks"]
    assert all(r["target"] in "ABCDE" for r in records)
  assert all(r["visual_tokens_llm"] <= r["visual_tokens_in"] for r in records)
  if summary.get("overall", summary.get("mIoU")):
    assert summary["percent_of_uncompressed"] == pytest.approx(100.0)


def test_unreadable_video_is_an_error_record(tmp_path):
  sample = evaluation.Sample("x", str(tmp_path / "broken.mp4"), "t", "q", ("a", "b"), "A")
  (tmp_path / "broken.mp4").write_bytes(b"nope")

  def answer(s):
    video.read_video(s.video, num_frames=2)
    return "A", {}

  records = evaluation.evaluate([sample], answer, str(tmp_path / "r.jsonl"))
  assert "cannot read video" in records[0]["error"]
  assert evaluation.summarise(records)["errors"] == 1


def test_parsing_and_metrics():
  assert evaluation.parse_letter("The best answer is (C).") == "C"
  assert evaluation.parse_letter("B. walk") == "B"
  assert evaluation.parse_letter("I think the man is walking towards the door while carrying a bag.") is None
  assert evaluation.parse_letter("E", count=4) is None
  assert evaluation.parse_span("The event happens in 3.5 - 7 seconds, then ...") == (3.5, 7.0)
  assert evaluation.parse_span("from 12 to 4.5 seconds") == (4.5, 12.0)
  assert evaluation.parse_span("no times here") is None
  assert evaluation.iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
  metrics = evaluation.grounding_metrics([{"iou": 0.2}, {"iou": 0.6}, {"iou": 0.8}])
  assert metrics["R1@0.5"] == pytest.approx(200 / 3) and metrics["mIoU"] == pytest.approx(160 / 3)
  accuracy = evaluation.mc_accuracy([{"task": "a", "correct": True}, {"task": "a", "correct": False},
                                     {"task": "b", "correct": True}])
  assert accuracy["overall"] == pytest.approx(200 / 3) and accuracy["tasks"] == {"a": 50.0, "b": 100.0}
  assert "(A, B, C)" in evaluation.prompt(evaluation.Sample("i", "v", "t", "q?", ("x", "y", "z"), "A"))


def test_eval_command(tmp_path, checkpoint, capsys):
  data = make_benchmark("mvbench", tmp_path)
  out = tmp_path / "res" / "mvbench_visionzip_0.25.jsonl"
  code = cli.main(["eval", "--checkpoint", checkpoint, "--benchmark", "mvbench", "--data", data, "--method",
                   "visionzip", "--retention", "0.25", "--frames", "4", "--out", str(out), "--dtype", "float32"])
  assert code == 0 and len(evaluation.read_results(str(out))) == 2
  assert json.loads(open(tmp_path / "res" / "mvbench_visionzip_0.25.summary.json").read())["questions"] == 2
  assert "skipped" in capsys.readouterr().out
  assert cli.main(["eval", "--checkpoint", checkpoint, "--benchmark", "nope", "--data", data]) == 2
