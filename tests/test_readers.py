"""The benchmark readers on miniature releases in each real layout: every id, count, bound, span and skip."""

import dataclasses
import importlib.util
import json
import os

import pytest

from ottvid_jax.eval import readers
from ottvid_jax.eval.readers import mlvu, timelens
from tests import releases

_FIELDS_NONE_UNLESS_LISTED = ("window", "frame_rate", "span", "subtitles")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """Every miniature release, built once: name -> Release."""
  root = tmp_path_factory.mktemp("releases")
  return {name: build(root) for name, build in releases.RELEASES.items()}


def _reference(task: str):
  """lmms-eval 0.7.3's ``tasks/<task>/utils.py``, loaded from its file (without the heavy package import)."""
  base = importlib.util.find_spec("lmms_eval").submodule_search_locations[0]
  spec = importlib.util.spec_from_file_location(f"lmms_ref_{task}", os.path.join(base, "tasks", task, "utils.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_registry():
  assert sorted(readers.BENCHMARKS) == sorted([
      "mvbench", "videomme", "videomme_w_subtitle", "mlvu_dev", "longvideobench", "longvideobench_i", "egoschema",
      "charades_sta", "charades_timelens", "activitynet_timelens", "qvhighlights_timelens"])
  assert {r for r in releases.RELEASES} >= set(readers.BENCHMARKS)


@pytest.mark.parametrize("name", sorted(releases.RELEASES))
def test_release(name, built):
  release = built[name]
  result = readers.read_benchmark(release.benchmark, release.path)
  assert (result.benchmark, result.layout) == (release.benchmark, release.layout)
  assert [s.id for s in result.samples] == list(release.ids)
  assert result.skip_counts() == dict(release.skipped)
  counts = list(result.skip_counts().values())
  assert counts == sorted(counts, reverse=True)  # most frequent first
  for reason, skipped in result.skipped.items():
    assert skipped.reason == reason and 1 <= len(skipped.examples) <= min(3, skipped.count)
  for sample in result.samples:
    expected = dict(release.samples[sample.id])
    for key in ("video", "subtitles"):
      if expected.get(key) is not None:
        expected[key] = os.path.join(release.path, expected[key])
    for key in _FIELDS_NONE_UNLESS_LISTED:
      expected.setdefault(key, None)
    for key, value in expected.items():
      assert getattr(sample, key) == value, (sample.id, key)
    assert sample.benchmark == release.benchmark
    assert os.path.exists(sample.video)
    assert sample.meta["layout"] == release.layout and "row" in sample.meta
    assert sample.meta.get("duplicate_of") == release.duplicates.get(sample.id)
    for key, value in release.meta.get(sample.id, {}).items():
      assert sample.meta[key] == value, (sample.id, key)
    if sample.options:
      assert sample.answer in sample.letters
    json.dumps(dataclasses.asdict(sample))  # JSON-describable
  counts = ", ".join(f"{reason} {count}" for reason, count in result.skip_counts().items())
  noun = "question" if release.count == 1 else "questions"
  assert result.summary() == (f"{release.benchmark} ({release.layout} layout): read {release.count} {noun}; "
                              + (f"skipped {sum(release.skipped.values())}: {counts}" if counts else "skipped none"))
  again = readers.read_benchmark(release.benchmark, release.path)
  assert again.samples == result.samples  # stable across reads
  samples, problems = result  # the earlier (samples, problems) pair
  assert samples == list(result.samples) and len(problems) == len(result.skipped)


def test_examples_name_the_entries(built):
  result = readers.read_benchmark("mvbench", built["mvbench"].path)
  assert result.skipped["missing video"].examples == (
      "json/action_sequence.json[2]: video/star/Charades_v1_480/ZZ.mp4",
      "json/episodic_reasoning.json[1]: video/tvqa/frames_fps3_hq/empty_clip (no frame images)")
  assert result.skipped["unknown task"].examples == ("json/notes.json: not one of the 20 MVBench tasks",)
  assert result.skipped["corrupt file"].examples[0].startswith("json/moving_count.json: ")
  assert readers.read_benchmark("egoschema", built["egoschema"].path).skipped["no public answer"].examples == (
      "questions.json[2]: 001934bb-81bd-4cd8-a574-0472ef3f6678",)


_EXPECTED_NAMES = {
    "mvbench": ("json/<task>.json", "video/<source>/", "star/Charades_segment/", "[lmms-eval video revision]"),
    "videomme": ("videomme/test-00000-of-00001.parquet", "data/<videoID>.mp4"),
    "videomme_w_subtitle": ("videomme/test-00000-of-00001.parquet", "subtitle/<videoID>.srt"),
    "mlvu_dev": ("json/<n>_<task>.json", "video_name, question, answer and task_type", "[lmms-eval sy1998/MLVU_dev]"),
    "longvideobench": ("lvb_val.json", "videos/<video_path>"),
    "longvideobench_i": ("lvb_val.json", "subtitles/<subtitle_path>"),
    "egoschema": ("questions.json and subset_answers.json", "good_clips_git/"),
    "charades_sta": ("charades_sta_test.txt", "Charades_v1_480/<VID>.mp4"),
    "charades_timelens": ("charades-timelens.json", "TimeLens-Bench/", "videos/charades/<vid>.mp4"),
    "activitynet_timelens": ("activitynet-timelens.json", "videos/activitynet/<vid>.mp4"),
    "qvhighlights_timelens": ("qvhighlights-timelens.json", "videos/qvhighlights/<vid>.mp4"),
}


@pytest.mark.parametrize("name", sorted(readers.BENCHMARKS))
def test_mismatched_folder(name, built, tmp_path):
  benchmark = name
  other = built["charades_sta" if benchmark != "charades_sta" else "videomme"]
  with pytest.raises(ValueError) as err:
    readers.read_benchmark(benchmark, other.path)
  message = str(err.value)
  for expected in _EXPECTED_NAMES[benchmark]:
    assert expected in message, (expected, message)
  found = "Charades_v1_480/, charades_sta_test.txt" if benchmark != "charades_sta" else "data/, subtitle/, videomme/"
  assert message.endswith(f"found at its top: {found}"), message
  with pytest.raises(ValueError, match=r"found at its top: nothing \(empty folder\)$"):
    readers.read_benchmark(benchmark, str(tmp_path))


def test_mlvu_folder_is_not_mvbench(built):
  with pytest.raises(ValueError, match=r"found at its top: json/, video/$"):
    readers.read_benchmark("mvbench", built["mlvu_dev"].path)
  with pytest.raises(ValueError, match=r"found at its top: json/, video/$"):
    readers.read_benchmark("mlvu_dev", built["mvbench"].path)


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="unknown benchmark 'nope'; choose one of activitynet_timelens, "):
    readers.read_benchmark("nope", str(tmp_path))
  with pytest.raises(ValueError, match="does not exist"):
    readers.read_benchmark("mvbench", str(tmp_path / "absent"))


def test_corrupt_top_level_file(tmp_path):
  (tmp_path / "lvb_val.json").write_text("[{", encoding="utf-8")
  with pytest.raises(ValueError, match="lvb_val.json is not valid JSON"):
    readers.read_benchmark("longvideobench", str(tmp_path))


def test_timelens_sets_read_only_their_own_file(built):
  # the three builders write the same folder layout: each set's ids come from its own file only
  ids = {name: {s.id for s in readers.read_benchmark(name, built[name].path).samples}
         for name in ("charades_timelens", "activitynet_timelens", "qvhighlights_timelens")}
  assert ids == {name: set(built[name].ids) for name in ids}
  assert not set.intersection(*ids.values())


def test_parse_query():
  # TimeLens timelens/dataset/timelens_data.py::parse_query
  assert timelens.parse_query("  a  person\n rides a bike. ") == "a person rides a bike"
  assert timelens.parse_query("..the end...") == "the end"
  assert timelens.parse_query("a . b .") == "a . b"


def test_mlvu_split_options():
  assert mlvu.split_options("Q?\n(A) x\n(B) y") == ("Q?", ("x", "y"))
  assert mlvu.split_options("Question: Q?\nOptions:\n(A) x\n(B) y\n") == ("Q?", ("x", "y"))
  assert mlvu.split_options("Q?\n(A) x\n(C) y") is None  # letters out of order
  assert mlvu.split_options("Q? (A) inline") is None


def test_mvbench_answers_and_paths_equal_lmms_eval(built):
  ref = _reference("mvbench")
  for name in ("mvbench", "mvbench_lmms"):
    for sample in readers.read_benchmark("mvbench", built[name].path).samples:
      result = ref.mvbench_process_results(sample.meta["row"], [""])["mvbench_accuracy"]
      assert result["gt_answer"] == sample.answer, sample.id
  release = built["mvbench_lmms"]
  ref.base_cache_dir, ref.cache_name = os.path.split(release.path)
  for sample in readers.read_benchmark("mvbench", release.path).samples:
    (path,) = ref.mvbench_doc_to_visual(sample.meta["row"], {"sub_task": sample.task})
    if "data0613" in sample.video:  # lmms-eval's data0613 fallback never fires (it tests the folder's basename)
      assert not os.path.exists(path) and sample.video == path.replace(release.path, release.path + "/data0613")
    else:
      assert path == sample.video, sample.id


def test_videomme_paths_equal_lmms_eval(built):
  ref = _reference("videomme")
  release = built["videomme"]
  ref.base_cache_dir, ref.cache_name = os.path.split(release.path)
  samples = readers.read_benchmark("videomme", release.path).samples
  assert {os.path.splitext(s.video)[1] for s in samples} == {".mp4", ".MP4", ".mkv"}
  for sample in samples:
    assert ref.videomme_doc_to_visual(sample.meta["row"]) == [sample.video], sample.id


def test_mlvu_lmms_paths_equal_lmms_eval(built):
  ref = _reference("mlvu")
  release = built["mlvu_dev_lmms"]
  ref.cache_dir_dev = release.path
  for sample in readers.read_benchmark("mlvu_dev", release.path).samples:
    if sample.video.startswith(os.path.join(release.path, "video") + os.sep):
      with pytest.raises(SystemExit):  # the video/ fallback is this reader's, not lmms-eval's
        ref.mlvu_doc_to_visual_dev(sample.meta["row"])
    else:
      assert ref.mlvu_doc_to_visual_dev(sample.meta["row"]) == [sample.video], sample.id
