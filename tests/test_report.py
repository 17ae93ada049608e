"""``ottvid report``: the table of a results folder, its percentages against the paired baseline, CSV and plot."""

import csv
import io
import os

import pytest

from ottvid_jax import cli
from ottvid_jax.eval import metrics, report
from ottvid_jax.eval.results import ResultsFile, RunIdentity
from ottvid_jax.eval.sample import Sample

EGO = [Sample(id=f"q{i}", benchmark="egoschema", task="egoschema", video="v.mp4", question=f"question {i}?",
              options=("yes", "no", "maybe", "never", "always"), answer="A") for i in range(4)]
STA = [Sample(id="s0", benchmark="charades_sta", task="charades_sta", video="c.mp4", question="a person sits",
              span=(0.0, 10.0), duration=30.0)]


def identity(benchmark, method, retention, **changes):
  base = dict(benchmark=benchmark, backbone="qwen2_5_vl", checkpoint="sha256:abc", method=method,
              hyperparameters={} if method == "none" else {"retention": retention}, retention=retention,
              protocol="paper", settings={"frames": 32}, dtype="bfloat16", version="0.1.0")
  base.update(changes)
  return RunIdentity(**base)


def write(folder, samples, responses, **identity_args):
  """A results file as ``ottvid eval`` writes it; a response of None is an error record."""
  ident = identity(samples[0].benchmark, **identity_args)
  path = os.path.join(folder, ident.file_name())
  with ResultsFile(path, ident) as f:
    for sample, response in zip(samples, responses):
      error = "RuntimeError: decode failed" if response is None else None
      f.append(metrics.record(sample, response, error=error))
  return path


@pytest.fixture
def folder(tmp_path):
  root = str(tmp_path / "results")
  write(root, EGO, ["A", "A", "A", "B"], method="none", retention=1.0)                 # 75 %
  write(root, EGO, ["A", "B", None, "B"], method="ottvid", retention=0.1)              # 1 of 3 answered
  write(root, EGO, ["A", "A", "A", "A"], method="ottvid", retention=0.25)              # 100 %
  write(root, STA, ["The event happens in 0 - 10 seconds."], method="none", retention=1.0)
  write(root, STA, ["The event happens in 0 - 5 seconds."], method="ottvid", retention=0.1)
  return root


def row(table, method, retention, **changes):
  (found,) = [r for r in table.rows if r.method == method and r.retention == retention and
              all(getattr(r, k) == v for k, v in changes.items())]
  return found


def test_scores_paired_percentages_and_means(folder):
  runs, skipped = report.collect(folder)
  assert len(runs) == 5 and skipped == []
  table = report.build(runs)
  assert table.benchmarks == ("egoschema", "charades_sta")  # VQA before VTG
  assert [(r.method, r.retention) for r in table.rows] == [("none", 1.0), ("ottvid", 0.25), ("ottvid", 0.1)]

  low = row(table, "ottvid", 0.1)
  cell = table.cells[(low, "egoschema")]
  assert cell.score == pytest.approx(100 / 3) and (cell.answered, cell.errors) == (1 + 2, 1)
  # Paired on q0, q1, q3 (the failed q2 left out of both runs): 1/3 against 2/3.
  assert cell.paired == 3 and cell.percent == pytest.approx(50.0)
  grounding = table.cells[(low, "charades_sta")]
  assert grounding.score == pytest.approx(50.0) and grounding.percent == pytest.approx(50.0)
  assert table.means(low) == {"vqa": pytest.approx(50.0), "vtg": pytest.approx(50.0), "all": pytest.approx(50.0)}

  high = row(table, "ottvid", 0.25)
  assert table.cells[(high, "egoschema")].percent == pytest.approx(100 / 0.75)
  assert (high, "charades_sta") not in table.cells
  assert table.means(high) == {"vqa": pytest.approx(100 / 0.75), "vtg": None, "all": pytest.approx(100 / 0.75)}
  assert table.means(row(table, "none", 1.0)) == {"vqa": 100.0, "vtg": 100.0, "all": 100.0}

  text = report.markdown(table)
  lines = text.splitlines()
  assert lines[0] == "| setting | egoschema | charades_sta | VQA % | VTG % | mean % |"
  assert lines[2] == "| qwen2_5_vl none 1 (paper) | 75.0 | 100.0 | 100.0 | 100.0 | 100.0 |"
  assert lines[3] == "| qwen2_5_vl ottvid 0.25 (paper) | 100.0 (133.3%) | – | 133.3 |  | 133.3 |"
  assert lines[4] == "| qwen2_5_vl ottvid 0.1 (paper) | 33.3 (50.0%) ⚠1 | 50.0 (50.0%) | 50.0 | 50.0 | 50.0 |"

  parsed = list(csv.DictReader(io.StringIO(report.csv_text(table))))
  assert len(parsed) == 5
  (line,) = [p for p in parsed if p["method"] == "ottvid" and p["retention"] == "0.1" and p["benchmark"] == "egoschema"]
  assert float(line["percent_of_uncompressed"]) == pytest.approx(50.0)
  assert (line["paired"], line["answered"], line["errors"]) == ("3", "3", "1")
  assert line["results"] == cell.path


def test_only_a_baseline_of_the_same_checkpoint_protocol_settings_and_dtype_pairs(folder):
  write(folder, EGO, ["A"] * 4, method="ottvid", retention=0.1, checkpoint="sha256:other")
  write(folder, EGO, ["A"] * 4, method="ottvid", retention=0.1, settings={"frames": 16}, protocol="paper+frames=16")
  write(folder, EGO, ["A"] * 4, method="ottvid", retention=0.1, dtype="float32")
  write(folder, EGO, ["A"] * 4, method="ottvid", retention=0.5, settings={"frames": 64})  # same name, other settings
  table = report.build(report.collect(folder)[0])
  for retention, changes in ((0.1, dict(checkpoint="sha256:other")), (0.1, dict(protocol="paper+frames=16")),
                             (0.1, dict(dtype="float32")), (0.5, {})):
    cell = table.cells[(row(table, "ottvid", retention, **changes), "egoschema")]
    assert cell.score == 100.0 and cell.percent is None and cell.paired == 0
  labels = table.labels()
  assert labels[row(table, "ottvid", 0.1, dtype="float32")] == "qwen2_5_vl ottvid 0.1 (paper) [float32]"
  assert labels[row(table, "ottvid", 0.1, checkpoint="sha256:other")].endswith("[other]")
  assert len(set(labels.values())) == len(labels)


def test_two_files_for_one_cell_are_refused(folder, tmp_path):
  copy = os.path.join(folder, "again", "egoschema")
  os.makedirs(copy)
  (source,) = [r.path for r in report.collect(folder)[0] if r.identity.benchmark == "egoschema" and
                r.identity.method == "none"]
  with open(source, "rb") as f, open(os.path.join(copy, "same.jsonl"), "wb") as g:
    g.write(f.read())
  with pytest.raises(ValueError, match="two results files for none r=1 on egoschema: .*the same run"):
    report.build(report.collect(folder)[0])


def test_cli_writes_markdown_csv_and_plot(folder, tmp_path, capsys):
  with open(os.path.join(folder, "notes.jsonl"), "w", encoding="utf-8") as f:
    f.write('{"id": "x"}\n')
  table_csv, picture = str(tmp_path / "t.csv"), str(tmp_path / "plots" / "p.png")
  assert cli.main(["report", folder, "--csv", table_csv, "--plot", picture]) == 0
  printed = capsys.readouterr()
  assert printed.out == report.markdown(report.build(report.collect(folder)[0]))
  assert "notes.jsonl: no run identity" in printed.err
  assert len(open(table_csv, encoding="utf-8").read().splitlines()) == 1 + 5
  with open(picture, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_errors(tmp_path, capsys):
  assert cli.main(["report", str(tmp_path / "missing")]) == 2
  assert "no results folder" in capsys.readouterr().err
  assert cli.main(["report", str(tmp_path)]) == 2
  assert "no results files of ottvid eval" in capsys.readouterr().err
  root = str(tmp_path / "r")
  write(root, EGO, ["A"] * 4, method="none", retention=1.0)
  assert cli.main(["report", root, "--plot", str(tmp_path / "p.png")]) == 2  # nothing compressed to plot
  assert "nothing to plot" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "p.png")
