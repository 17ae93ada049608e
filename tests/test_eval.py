"""``ottvid eval`` end to end: every miniature release, a tiny random checkpoint, the paper's protocol.

Each run's records are checked against what the protocol says the run must
have done: the questions read (ids, order, skips), the frames sampled for each
(the protocol's rule on the sample's video and window), Qwen2.5-VL's time
positions, the exact prompt, the parser and the generation budget; then the
reliability of the results file through the command itself (resume, identity,
torn line, lock, retried errors, Ctrl-C, every question failing, the paired
baseline).
"""

import json
import os

import jax
import jax.numpy as jnp
import pytest

from ottvid_jax import cli, sampling, video
from ottvid_jax import eval as evaluation
from ottvid_jax.eval import prompts, protocol as protocols, results
from tests import hf_tiny, releases

FRAMES = 2  # a tiny model's context holds the prompt of two frames at the paper's pixel bounds


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
  """Every run here compiles the same tiny programs afresh (a new model each time): a persistent compilation
  cache for this module compiles each once."""
  from jax._src import compilation_cache as cache  # pylint: disable=import-outside-toplevel

  settings = {"jax_compilation_cache_dir": str(tmp_path_factory.mktemp("xla_cache")),
              "jax_persistent_cache_min_compile_time_secs": 0.0, "jax_persistent_cache_min_entry_size_bytes": -1}
  before = {name: getattr(jax.config, name) for name in settings}
  cache.reset_cache()
  for name, value in settings.items():
    jax.config.update(name, value)
  yield
  for name, value in before.items():
    jax.config.update(name, value)
  cache.reset_cache()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  return hf_tiny.save_tiny_qwen(str(tmp_path_factory.mktemp("tiny_qwen_eval")), seed=2)


def run(*args):
  return cli.main(["eval", "--dtype", "float32", *args])


def eval_args(checkpoint, release, out_dir, *more):
  return ["--checkpoint", checkpoint, "--benchmark", release.benchmark, "--data", release.path, "--frames",
          str(FRAMES), "--results-dir", str(out_dir), *more]


def only_file(folder):
  found = [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files if f.endswith(".jsonl")]
  assert len(found) == 1, found
  return found[0]


@pytest.mark.parametrize("name", sorted(releases.RELEASES))
def test_every_release_end_to_end(name, tmp_path, checkpoint, capsys):
  release = releases.RELEASES[name](tmp_path)
  assert run(*eval_args(checkpoint, release, tmp_path / "results", "--method", "visionzip",
                        "--retention", "0.25")) == 0
  printed = capsys.readouterr().out
  assert f"read {release.count} question" in printed
  path = only_file(tmp_path / "results")
  identity, records = evaluation.read_results(path)
  assert [r["id"] for r in records] == list(release.ids)
  assert identity.benchmark == release.benchmark and identity.method == "visionzip" and identity.retention == 0.25
  assert identity.protocol == f"paper+frames={FRAMES}" and identity.backbone == "qwen2_5_vl"
  assert os.path.basename(path) == os.path.basename(identity.file_name())

  protocol = protocols.PAPER.with_frames(FRAMES)
  inputs = protocol.inputs_for("qwen2_5_vl", release.benchmark)
  samples = {s.id: s for s in evaluation.read_benchmark(release.benchmark, release.path).samples}
  for record in records:
    sample = samples[record["id"]]
    assert record.get("error") is None, record
    info = video.probe(sample.video, sample.frame_rate)
    expected = sampling.frame_indices(inputs.frames, info.total_frames, info.fps, sample.window)
    assert record["frames"] == [int(i) for i in expected.indices]
    if sample.window is not None:
      start, end = sample.window
      assert all(start * info.fps - 1 <= i <= end * info.fps for i in record["frames"])
    assert record["second_per_grid"] == [1.0]  # the authors' runs: transformers' default 2 fps, 2 / 2
    context = {}
    if release.benchmark == "videomme_w_subtitle":
      fps, count = prompts.cv2_frame_info(sample.video)
      context = {"fps": fps, "frame_count": count}
    asked = prompts.prompt(sample, "qwen2_5_vl", protocol.style(release.benchmark), **context)
    assert record["prompt"] == asked.replace("<image>", "")
    assert record["parser"] == protocol.parser_for(release.benchmark).value
    assert record["max_new_tokens"] == protocol.new_tokens(release.benchmark)
    assert record["visual_tokens_llm"] <= record["visual_tokens_in"]

  with open(os.path.splitext(path)[0] + ".summary.json", encoding="utf-8") as f:
    summary = json.load(f)
  assert summary["questions"] == release.count and summary["answered"] == release.count
  assert summary["errors"] == 0 and summary["pending"] == 0
  assert summary["scores"]["questions"] == release.count
  assert 0.0 <= summary["scores"]["overall"] <= 100.0

  # A second run answers nothing and changes nothing.
  before = open(path, encoding="utf-8").read()
  assert run(*eval_args(checkpoint, release, tmp_path / "results", "--method", "visionzip",
                        "--retention", "0.25")) == 0
  assert open(path, encoding="utf-8").read() == before


def test_resume_identity_torn_line_lock_and_baseline(tmp_path, checkpoint, capsys):
  release = releases.build_charades_sta(tmp_path)
  out_dir = tmp_path / "results"
  # The uncompressed baseline, interrupted after two questions, then resumed.
  assert run(*eval_args(checkpoint, release, out_dir, "--method", "none", "--limit", "2")) == 0
  base_path = only_file(out_dir)
  assert len(evaluation.read_results(base_path)[1]) == 2
  with open(base_path, "ab") as f:
    f.write(b'{"id": "torn by a kill')  # a kill mid-write
  assert run(*eval_args(checkpoint, release, out_dir, "--method", "none")) == 0
  _, base = evaluation.read_results(base_path)
  assert [r["id"] for r in base] == list(release.ids)
  assert all(json.loads(line) for line in open(base_path, encoding="utf-8"))

  # Another method into the baseline's file is refused, naming what differs.
  capsys.readouterr()
  assert run(*eval_args(checkpoint, release, out_dir, "--method", "ottvid", "--out", base_path)) == 2
  assert "holds another run's results" in capsys.readouterr().err

  # A second run on a file in use is refused.
  identity, _ = evaluation.read_results(base_path)
  with results.ResultsFile(base_path, identity):
    assert run(*eval_args(checkpoint, release, out_dir, "--method", "none")) == 2
  assert "another run" in capsys.readouterr().err

  # The compressed run finds the baseline of its identity and pairs by question id.
  assert run(*eval_args(checkpoint, release, out_dir, "--method", "ottvid", "--retention", "0.25")) == 0
  (summary_path,) = [os.path.join(d, f) for d, _, fs in os.walk(out_dir) for f in fs
                     if f.endswith(".summary.json") and "_ottvid_" in f]
  summary = json.load(open(summary_path, encoding="utf-8"))
  paired = summary["percent_of_uncompressed"]
  assert summary["baseline"] == base_path and paired["paired"] == release.count
  assert paired["coverage"] == [1.0, 1.0]

  # ottvid report finds both runs and the same paired percentage.
  capsys.readouterr()
  assert cli.main(["report", str(out_dir)]) == 0
  table = capsys.readouterr().out.splitlines()
  (line,) = [t for t in table if " ottvid 0.25 " in t]
  if paired["ratio"] is None:  # a random model's baseline may score 0: no share, as in the summary
    assert "%)" not in line
  else:
    assert f"({paired['ratio']:.1f}%)" in line


def test_errors_are_retried_and_a_run_that_only_fails_exits_non_zero(tmp_path, checkpoint, capsys, monkeypatch):
  release = releases.build_egoschema(tmp_path)
  broken = {}
  real = video.load_clip

  def flaky(source, *args, **kwargs):
    if broken.get("on"):
      raise ValueError(f"cannot read video {source!r}: broken on purpose")
    return real(source, *args, **kwargs)

  monkeypatch.setattr(video, "load_clip", flaky)
  broken["on"] = True
  assert run(*eval_args(checkpoint, release, tmp_path / "r")) == 1
  err = capsys.readouterr().err
  assert "every answered question failed" in err and "broken on purpose" in err
  path = only_file(tmp_path / "r")
  assert all(r["error"] for r in evaluation.read_results(path)[1])
  assert run(*eval_args(checkpoint, release, tmp_path / "r", "--no-retry-errors")) == 1  # nothing retried
  broken["on"] = False
  assert run(*eval_args(checkpoint, release, tmp_path / "r")) == 0  # retried: all answered now
  _, records = evaluation.read_results(path)
  assert [r["id"] for r in records] == list(release.ids) and not any(r["error"] for r in records)


def test_ctrl_c_stops_with_one_line_and_the_summary_so_far(tmp_path, checkpoint, capsys, monkeypatch):
  release = releases.build_egoschema(tmp_path)
  calls = {"n": 0}
  real = video.load_clip

  def interrupted(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 2:
      raise KeyboardInterrupt
    return real(*args, **kwargs)

  monkeypatch.setattr(video, "load_clip", interrupted)
  assert run(*eval_args(checkpoint, release, tmp_path / "r")) == 130
  captured = capsys.readouterr()
  assert captured.err.strip().splitlines() == [
      "ottvid eval: interrupted after 1 answers this run; the same command resumes"]
  assert '"answered": 1' in captured.out
  assert len(evaluation.read_results(only_file(tmp_path / "r"))[1]) == 1


def test_bad_input_is_refused_before_the_model_loads(tmp_path, checkpoint, capsys):
  release = releases.build_charades_sta(tmp_path)
  assert run(*eval_args(checkpoint, release, tmp_path / "r", "--limit", "0")) == 2
  assert cli.main(["eval", "--checkpoint", checkpoint, "--benchmark", "charades_sta", "--data",
                   str(tmp_path / "nowhere")]) == 2
  assert "does not exist" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    cli.main(["eval", "--checkpoint", checkpoint, "--benchmark", "nope", "--data", release.path])
  assert not os.path.exists(tmp_path / "r")


def test_answerer_api(tmp_path, checkpoint):
  from ottvid_jax.answer import make_answerer

  release = releases.build_mvbench(tmp_path)
  read = evaluation.read_benchmark("mvbench", release.path)
  answer = make_answerer(checkpoint, "ottvid", 0.25, protocols.PAPER.with_frames(FRAMES), jnp.float32)
  sample = next(s for s in read.samples if s.window is not None)
  response, extra = answer(sample)
  assert isinstance(response, str) and extra["grid_thw"][0][0] == FRAMES // 2
  assert answer.backbone == "qwen2_5_vl"
