"""Results files: one run's identity, then one JSON line per answered question.

A results file is JSON lines. The first line is the header
``{"ottvid_results": 1, "identity": {...}}``: which checkpoint (by content
fingerprint), backbone, method with every hyperparameter, retention, protocol
with every setting, frames, dtype and package version produced the records
below it. Every other line is one question's record (``"id"`` first).

What makes a file trustworthy after interruptions and mistakes:

- resuming into a file whose header names another identity is refused;
- a line torn by a kill mid-write is cut away before anything is appended
  (records are written with one ``write`` call each, flushed to disk);
- an advisory lock (``<file>.lock``) stops a second run on the same file;
- errors (records whose ``error`` is set) are answered again on resume,
  unless asked not to;
- a question answered more than once (an error retried on resume) is read
  back once, its last record winning, so no summary counts it twice.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
from typing import Any, Iterator, Mapping, Optional

__all__ = ["FORMAT", "IdentityMismatch", "ResultsFile", "ResultsLocked", "RunIdentity", "checkpoint_fingerprint", "failed",
           "read_results"]

FORMAT = 1


class IdentityMismatch(ValueError):
  """A results file belongs to another run than the one resuming into it."""


class ResultsLocked(RuntimeError):
  """Another run holds the results file."""


@dataclasses.dataclass(frozen=True)
class RunIdentity:
  """Everything that decides a run's answers; two runs may share a file only if all of it is equal.

  Attributes:
    benchmark: the benchmark's registry name.
    backbone: ``qwen2_5_vl``, ``llava_onevision`` or ``llava_vid``.
    checkpoint: the checkpoint's content fingerprint (:func:`checkpoint_fingerprint`).
    method: the compression method's name (``none`` for the uncompressed model).
    hyperparameters: every field of the method's configuration.
    retention: the retention ratio (1.0 uncompressed).
    protocol: the protocol's name.
    settings: every setting of the protocol (frames, pixels, positions, prompts, parser, lengths).
    dtype: the compute dtype.
    version: the ``ottvid_jax`` version.
    checkpoint_path: where the checkpoint was read from (informative; not compared).
  """

  benchmark: str
  backbone: str
  checkpoint: str
  method: str
  hyperparameters: Mapping[str, Any]
  retention: float
  protocol: str
  settings: Mapping[str, Any]
  dtype: str
  version: str
  checkpoint_path: str = ""

  def to_json(self) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(self), sort_keys=True, default=str))

  @classmethod
  def from_json(cls, data: Mapping[str, Any]) -> "RunIdentity":
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})

  def compared(self) -> dict:
    """The fields two runs must share (all but the checkpoint's path)."""
    data = self.to_json()
    data.pop("checkpoint_path", None)
    return data

  @property
  def digest(self) -> str:
    """8 hex digits naming this identity (for file names)."""
    return hashlib.sha256(json.dumps(self.compared(), sort_keys=True).encode()).hexdigest()[:8]

  def file_name(self) -> str:
    """The default results path, relative to the results folder: ``<benchmark>/<backbone>_<method>_r<r>_<protocol>_<digest>.jsonl``."""
    return os.path.join(self.benchmark,
                        f"{self.backbone}_{self.method}_r{self.retention:g}_{self.protocol}_{self.digest}.jsonl")

  def differences(self, other: "RunIdentity") -> list[str]:
    """``field: ours != theirs`` for every compared field that differs."""
    mine, theirs = self.compared(), other.compared()
    out = []
    for key in sorted(set(mine) | set(theirs)):
      if mine.get(key) != theirs.get(key):
        out.append(f"{key}: {theirs.get(key)!r} in the file, {mine.get(key)!r} now")
    return out


def checkpoint_fingerprint(checkpoint_dir: str) -> str:
  """A fingerprint of a checkpoint folder's content, cheap enough for 15 GB of weights.

  The SHA-256 of ``config.json``, of the safetensors index if there is one, and
  of every weight file's name, size and first and last MiB (a changed tensor
  changes its file's bytes; rewriting a 15 GB file to compare it would take
  minutes).
  """
  digest = hashlib.sha256()
  names = sorted(os.listdir(checkpoint_dir))
  for name in names:
    path = os.path.join(checkpoint_dir, name)
    if name in ("config.json", "model.safetensors.index.json"):
      with open(path, "rb") as f:
        digest.update(name.encode() + b"\0" + f.read())
    elif name.endswith((".safetensors", ".bin")):
      size = os.path.getsize(path)
      digest.update(f"{name}\0{size}\0".encode())
      with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        if size > 2 << 20:
          f.seek(-(1 << 20), os.SEEK_END)
          digest.update(f.read())
  return "sha256:" + digest.hexdigest()[:16]


def failed(record: Mapping[str, Any]) -> bool:
  """Whether a record is an error (no answer was scored)."""
  return record.get("error") is not None


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
  with open(path, "rb") as f:
    for number, line in enumerate(f, 1):
      yield number, line


def read_results(path: str) -> tuple[Optional[RunIdentity], list[dict]]:
  """``(identity, records)`` of a results file: each question once (its last record), in first-answered order.

  A torn last line (an interrupted write) is ignored. A file without a header
  (written before headers existed) gives ``identity`` None.

  Raises:
    ValueError: for a line that is not JSON anywhere but at the end.
  """
  if not os.path.isfile(path):
    return None, []
  identity, records, order = None, {}, []
  lines = list(_lines(path))
  for number, raw in lines:
    if not raw.strip():
      continue
    try:
      data = json.loads(raw)
    except json.JSONDecodeError as err:
      if number == len(lines) and not raw.endswith(b"\n"):
        break  # torn by an interruption; ResultsFile cuts it before appending
      raise ValueError(f"{path}:{number}: not a JSON line ({err.msg})") from err
    if number == 1 and "ottvid_results" in data:
      identity = RunIdentity.from_json(data["identity"])
      continue
    key = data.get("id")
    if key not in records:
      order.append(key)
    records[key] = data
  return identity, [records[k] for k in order]


def _repair_tail(path: str) -> int:
  """Cuts a torn last line (no final newline) away; returns the bytes removed."""
  with open(path, "rb+") as f:
    size = f.seek(0, os.SEEK_END)
    if size == 0:
      return 0
    f.seek(size - 1)
    if f.read(1) == b"\n":
      return 0
    # Find the last newline before the torn line.
    position = size - 1
    block = 1 << 16
    while position > 0:
      start = max(0, position - block)
      f.seek(start)
      chunk = f.read(position - start)
      cut = chunk.rfind(b"\n")
      if cut >= 0:
        keep = start + cut + 1
        break
      position = start
    else:
      keep = 0
    f.truncate(keep)
    return size - keep


class ResultsFile:
  """A results file opened for one run: locked, repaired, checked against the run's identity.

  Use as a context manager::

    with ResultsFile(path, identity) as results:
      for sample in samples:
        if sample.id not in results.done:
          results.append(record_for(sample))

  Args:
    path: the JSONL file (created with its folder).
    identity: the run's identity; a file with another one is refused.
    retry_errors: whether questions whose last record is an error count as
      not done (answered again), the default.

  Raises (on entering):
    IdentityMismatch: the file holds another run's records, or records but no header.
    ResultsLocked: another process holds the file's lock.
  """

  def __init__(self, path: str, identity: RunIdentity, retry_errors: bool = True):
    self.path = path
    self.identity = identity
    self.retry_errors = retry_errors
    self.done: set[str] = set()
    self._records: dict[str, dict] = {}
    self.repaired_bytes = 0
    self._lock_fd: Optional[int] = None
    self._fd: Optional[int] = None

  def __enter__(self) -> "ResultsFile":
    folder = os.path.dirname(os.path.abspath(self.path))
    os.makedirs(folder, exist_ok=True)
    self._lock()
    try:
      self._open()
    except BaseException:
      self._unlock()
      raise
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      os.close(self._fd)
      self._fd = None
    self._unlock()

  def _lock(self) -> None:
    lock_path = self.path + ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
      os.close(fd)
      if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise ResultsLocked(f"another run (pid {holder}) is writing {self.path}; wait for it to end or "
                            "give another --out") from None
      raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    self._lock_fd = fd

  def _unlock(self) -> None:
    if self._lock_fd is not None:
      fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
      os.close(self._lock_fd)
      self._lock_fd = None

  def _open(self) -> None:
    exists = os.path.isfile(self.path) and os.path.getsize(self.path) > 0
    if exists:
      self.repaired_bytes = _repair_tail(self.path)
    identity, records = read_results(self.path) if exists else (None, [])
    if exists and identity is None and (records or os.path.getsize(self.path) > 0):
      raise IdentityMismatch(f"{self.path} has no run identity (written by another tool or an older version); "
                             "give another --out")
    if identity is not None and identity.compared() != self.identity.compared():
      diff = "; ".join(self.identity.differences(identity))
      raise IdentityMismatch(f"{self.path} holds another run's results ({diff}); give another --out, or "
                             "delete the file to start over")
    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    if identity is None:
      self._write({"ottvid_results": FORMAT, "identity": self.identity.to_json()})
    self._records = {r["id"]: r for r in records}
    self.done = {r["id"] for r in records if not (self.retry_errors and failed(r))}

  def _write(self, data: dict) -> None:
    line = (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")
    written = os.write(self._fd, line)  # one call: a kill leaves a whole line or a torn tail, never an interleaving
    if written != len(line):
      raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
    os.fsync(self._fd)

  @property
  def records(self) -> list[dict]:
    """Every question's last record, in first-answered order (as :func:`read_results` reads them)."""
    return list(self._records.values())

  def append(self, record: dict) -> None:
    """Writes one question's record (it must carry ``"id"``) and marks it done unless it is an error."""
    if "id" not in record:
      raise ValueError("a record needs an 'id'")
    self._write(record)
    self._records[record["id"]] = record
    if not (self.retry_errors and failed(record)):
      self.done.add(record["id"])
