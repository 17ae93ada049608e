"""Results files: identity, torn lines, locks, retried errors, one record per question."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ottvid_jax.eval import results as results_lib
from ottvid_jax.eval.results import IdentityMismatch, ResultsFile, ResultsLocked, RunIdentity, read_results


# A child process loads results.py alone (it needs only the standard library), not the JAX package.
_CHILD = textwrap.dedent(f"""
    import importlib.util, os, signal, sys
    spec = importlib.util.spec_from_file_location("results", {results_lib.__file__!r})
    results = sys.modules["results"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    identity = results.RunIdentity.from_json({{IDENTITY}})
""")


def child(code):
  return _CHILD.replace("{IDENTITY}", repr(identity().to_json())) + textwrap.dedent(code)


def identity(**changes):
  base = dict(benchmark="mvbench", backbone="qwen2_5_vl", checkpoint="sha256:abc", method="ottvid",
              hyperparameters={"retention": 0.1, "epsilon": 0.01}, retention=0.1, protocol="paper",
              settings={"frames": 32}, dtype="bfloat16", version="0.1.0", checkpoint_path="/x")
  base.update(changes)
  return RunIdentity(**base)


def test_header_round_trip_and_default_name(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsFile(path, identity()) as f:
    f.append({"id": "a", "correct": True})
  found, records = read_results(path)
  assert found == identity() and records == [{"id": "a", "correct": True}]
  with open(path, encoding="utf-8") as f:
    assert json.loads(f.readline())["ottvid_results"] == results_lib.FORMAT
  name = identity().file_name()
  assert name.startswith(os.path.join("mvbench", "qwen2_5_vl_ottvid_r0.1_paper_")) and name.endswith(".jsonl")
  assert identity(checkpoint_path="/elsewhere").file_name() == name  # the path is not part of the identity
  assert identity(hyperparameters={"retention": 0.1, "epsilon": 0.02}).file_name() != name


@pytest.mark.parametrize("change", [dict(checkpoint="sha256:other"), dict(method="visionzip"),
                                    dict(hyperparameters={"retention": 0.1, "epsilon": 0.05}),
                                    dict(protocol="native"), dict(settings={"frames": 64}), dict(dtype="float32")])
def test_resuming_into_another_identity_is_refused(tmp_path, change):
  path = str(tmp_path / "r.jsonl")
  with ResultsFile(path, identity()) as f:
    f.append({"id": "a"})
  with pytest.raises(IdentityMismatch, match=list(change)[0]):
    with ResultsFile(path, identity(**change)):
      pass
  assert read_results(path)[1] == [{"id": "a"}]  # nothing written by the refused run
  with ResultsFile(path, identity(checkpoint_path="/moved")) as f:  # same run, checkpoint moved: accepted
    assert f.done == {"a"}


def test_a_file_without_header_is_refused(tmp_path):
  path = tmp_path / "old.jsonl"
  path.write_text('{"id": "a", "correct": true}\n')
  with pytest.raises(IdentityMismatch, match="no run identity"):
    with ResultsFile(str(path), identity()):
      pass


def test_torn_last_line_is_cut_before_appending(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsFile(path, identity()) as f:
    f.append({"id": "a"})
    f.append({"id": "b"})
  with open(path, "ab") as raw:  # a kill in the middle of the next write
    raw.write(b'{"id": "c", "respo')
  assert [r["id"] for r in read_results(path)[1]] == ["a", "b"]
  with ResultsFile(path, identity()) as f:
    assert f.repaired_bytes == len(b'{"id": "c", "respo') and f.done == {"a", "b"}
    f.append({"id": "c", "response": "A"})
  assert [r["id"] for r in read_results(path)[1]] == ["a", "b", "c"]
  with open(path, encoding="utf-8") as raw:
    assert all(json.loads(line) for line in raw)  # every line whole


def test_kill_mid_run_loses_at_most_the_record_being_written(tmp_path):
  path = str(tmp_path / "r.jsonl")
  script = child(f"""
      with results.ResultsFile({path!r}, identity) as f:
        for i in range(5):
          f.append({{"id": str(i), "response": "x" * 1000}})
        os.write(f._fd, b'{{"id": "5", "resp')  # the process dies inside the next write
        os.kill(os.getpid(), signal.SIGKILL)
  """)
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
  assert done.returncode == -9, done.stderr.decode()
  with ResultsFile(path, identity()) as f:  # the lock died with the process
    assert f.done == {str(i) for i in range(5)} and f.repaired_bytes > 0
    f.append({"id": "5"})
  assert [r["id"] for r in read_results(path)[1]] == [str(i) for i in range(6)]


def test_a_second_run_on_the_same_file_is_refused(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsFile(path, identity()):
    with pytest.raises(ResultsLocked, match=f"pid {os.getpid()}"):
      with ResultsFile(path, identity()):
        pass
    script = child(f"""
        try:
          results.ResultsFile({path!r}, identity).__enter__()
        except Exception as err:
          print(type(err).__name__)
    """)
    holder = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert holder.stdout.strip() == "ResultsLocked"
  with ResultsFile(path, identity()):  # released on exit
    pass


def test_errors_are_retried_unless_asked_not_to(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsFile(path, identity()) as f:
    f.append({"id": "a", "error": "ValueError: cannot read video"})
    f.append({"id": "b", "correct": False, "error": None})
    assert f.done == {"b"}
  with ResultsFile(path, identity(), retry_errors=False) as f:
    assert f.done == {"a", "b"}
  with ResultsFile(path, identity()) as f:
    assert f.done == {"b"}
    f.append({"id": "a", "correct": True})  # the retry succeeds
    assert [r["id"] for r in f.records] == ["a", "b"]
  _, records = read_results(path)
  assert records == [{"id": "a", "correct": True}, {"id": "b", "correct": False, "error": None}]  # once each, the last wins


def test_a_corrupt_line_inside_the_file_is_an_error(tmp_path):
  path = str(tmp_path / "r.jsonl")
  with ResultsFile(path, identity()) as f:
    f.append({"id": "a"})
  with open(path, "a", encoding="utf-8") as raw:
    raw.write("garbage\n{\"id\": \"b\"}\n")
  with pytest.raises(ValueError, match=":3: not a JSON line"):
    read_results(path)


def test_checkpoint_fingerprint_follows_content(tmp_path):
  (tmp_path / "config.json").write_text('{"a": 1}')
  (tmp_path / "model.safetensors").write_bytes(b"\0" * 100)
  first = results_lib.checkpoint_fingerprint(str(tmp_path))
  (tmp_path / "model.safetensors").write_bytes(b"\0" * 99 + b"\1")
  second = results_lib.checkpoint_fingerprint(str(tmp_path))
  (tmp_path / "config.json").write_text('{"a": 2}')
  assert len({first, second, results_lib.checkpoint_fingerprint(str(tmp_path))}) == 3
