"""Reading annotation files (JSON, JSONL, parquet) and describing folders for layout errors."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable, Optional, Sequence

__all__ = ["describe_folder", "first_file", "is_number", "json_safe", "layout_error", "load_json", "read_rows"]

_LISTED = 12  # top-level entries named in a layout error


def load_json(path: str) -> Any:
  """The parsed JSON file.

  Raises:
    ValueError: the file is not valid JSON (names the file).
  """
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as err:
    raise ValueError(f"{path} is not valid JSON: {err}") from err


def read_rows(path: str) -> list:
  """The rows of a JSON list, a JSONL file or a parquet table.

  A JSONL line that does not parse is returned as its raw text (not a dict),
  so that the reader counts it as a corrupt entry.

  Raises:
    ValueError: a JSON file that does not parse, or is not a list.
  """
  if path.endswith(".parquet"):
    import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel

    return pq.read_table(path).to_pylist()
  if path.endswith(".jsonl"):
    rows = []
    with open(path, encoding="utf-8") as f:
      for line in f:
        if line.strip():
          try:
            rows.append(json.loads(line))
          except json.JSONDecodeError:
            rows.append(line.rstrip("\n"))
    return rows
  data = load_json(path)
  if not isinstance(data, list):
    raise ValueError(f"{path} holds a JSON {type(data).__name__}, not a list of entries")
  return data


def json_safe(value: Any) -> Any:
  """``value`` with tuples as lists, non-finite floats as None and unknown objects as strings."""
  if isinstance(value, dict):
    return {str(k): json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(v) for v in value]
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if value is None or isinstance(value, (str, int, bool)):
    return value
  if hasattr(value, "item"):  # numpy scalars
    return json_safe(value.item())
  return str(value)


def is_number(value: Any) -> bool:
  """A finite int or float (not a bool)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def first_file(candidates: Iterable[str]) -> Optional[str]:
  """The first path that is an existing file."""
  for path in candidates:
    if os.path.isfile(path):
      return path
  return None


def describe_folder(root: str) -> str:
  """The top of a folder: ``"a/, b.json, c.txt"`` (folders with a slash), or ``"nothing (empty folder)"``."""
  try:
    names = sorted(os.listdir(root))
  except OSError as err:
    return f"nothing readable ({err.strerror})"
  if not names:
    return "nothing (empty folder)"
  shown = [n + "/" if os.path.isdir(os.path.join(root, n)) else n for n in names[:_LISTED]]
  more = f", ... ({len(names)} entries)" if len(names) > _LISTED else ""
  return ", ".join(shown) + more


def layout_error(benchmark: str, expected: Sequence[str], root: str) -> ValueError:
  """The error for a folder that matches none of ``benchmark``'s layouts."""
  layouts = "; or ".join(expected)
  return ValueError(f"{root} does not look like a {benchmark} release: expected {layouts}; "
                    f"found at its top: {describe_folder(root)}")
