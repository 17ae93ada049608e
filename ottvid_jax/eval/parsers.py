"""Answer parsers, one per benchmark, behaving as the reference's own task functions.

Multiple choice (``value`` is a letter, or MVBench's processed string):

================ =============================================================================
benchmark        reference (lmms-eval 0.7.3 unless said)
================ =============================================================================
mvbench          ``mvbench/utils.py::mcq_acc``'s ``process`` (the score is ``process(pred) ==
                 gold letter``)
videomme         ``_task_utils/mcq_extract.py::extract_mcq_answer`` over A-D;
                 ``Parser.LMMS_EVAL_0_7_1``: ``videomme/utils.py::extract_characters_regex``
                 as of tag v0.7.1 (88b23e2b; code from 0c1350d6, replaced in 9ca4445d)
mlvu_dev         ``extract_mcq_answer`` over A-D; ``Parser.LMMS_EVAL_0_7_1``:
                 ``mlvu/utils.py::extract_characters_regex`` as of v0.7.1 (code from e5f70443)
longvideobench   ``longvideobench/utils.py::parse_multi_choice_response``
egoschema        ``egoschema/utils.py::parse_multi_choice_response`` (MMMU style)
================ =============================================================================

Grounding (``value`` is ``(start, end)`` in seconds or None):

==================== ========================================================================
charades_sta         ``charades_sta/utils.py::extract_time`` (at most one pair, reordered)
TimeLens sets        ``timelens/utils.py::extract_time`` (mm:ss first, first pair, not
                     reordered); ``Parser.TIMELENS``: TimeLens ``timelens/utils.py::extract_time``
                     with ``evaluation/eval_dataloader.py``'s rules (no pair: ``[duration + 10,
                     duration + 20]``; every time rounded to whole seconds; the first pair)
==================== ========================================================================

Where the reference draws a random letter (LongVideoBench, EgoSchema: nothing
parsed), ours draws from ``random.Random(seed)`` with a seed derived from the
question id (:func:`fallback_seed`), so a rerun gives the same letter and the
record can store it. lmms-eval's own draw comes from Python's global
``random``, seeded once with 0 at the start of ``simple_evaluate`` and consumed
by everything that runs before it, so it cannot be reproduced.

The v0.7.1 option changes only Video-MME and MLVU: the other parsers here are
the same in v0.7.1 and 0.7.3, except Charades-STA, whose v0.7.1 task only wrote
a submission file (its ``extract_time`` arrived in 0.7.2); the 0.7.3 parser is
used for it under either option.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import random
import re
from typing import Optional, Sequence, Union

from ottvid_jax.eval.prompts import TIMELENS, base_benchmark
from ottvid_jax.eval.sample import LETTERS, Sample

__all__ = ["Parsed", "Parser", "charades_extract_time", "egoschema_letter", "extract_mcq_answer", "fallback_seed",
           "iou_lmms_eval", "iou_timelens", "longvideobench_letter", "mlvu_v0_7_1", "mvbench_process", "parse",
           "timelens_extract_time", "timelens_official_extract_time", "timelens_official_span", "videomme_v0_7_1"]

Span = tuple[float, float]


class Parser(str, enum.Enum):
  """Which reference's parsing and scoring rules."""
  LMMS_EVAL = "lmms-eval"  # 0.7.3
  LMMS_EVAL_0_7_1 = "lmms-eval-0.7.1"
  TIMELENS = "timelens"  # the official TimeLens evaluation (TimeLens sets only)


@dataclasses.dataclass(frozen=True)
class Parsed:
  """What a parser read from a response.

  Attributes:
    value: the letter (``""`` when the reference finds none), MVBench's
      processed answer, or a ``(start, end)`` span in seconds (None when none
      was read).
    fallback: whether ``value`` is the reference's fallback rather than read
      from the response (a random letter; TimeLens' out-of-video span).
    seed: the ``random.Random`` seed of a random fallback, else None.
  """
  value: Union[str, Span, None]
  fallback: bool = False
  seed: Optional[int] = None


def fallback_seed(question_id: str, base_seed: int = 0) -> int:
  """A 32-bit seed for a question's random fallback: stable across runs and machines."""
  digest = hashlib.sha256(f"{base_seed}:{question_id}".encode("utf-8")).digest()
  return int.from_bytes(digest[:4], "big")


# --- MVBench -------------------------------------------------------------------------------------------------

_MVB_OPTION = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
_MVB_PERIOD = re.compile(r"\.(?!\d)")  # mcq_acc's periodStrip: its "(?!<=\d)" lookahead never fails before "."
_MVB_COMMA = re.compile(r"(\d)(,)(\d)")
_MVB_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_MVB_LETTER = re.compile(r"\b([A-E])\b", re.IGNORECASE)


def _mvbench_punctuation(text: str) -> str:
  out = text
  has_comma_number = _MVB_COMMA.search(text) is not None
  for mark in _MVB_PUNCT:
    # mcq_acc.processPunctuation: the test reads the original text, the replacement the running one
    if mark + " " in text or " " + mark in text or has_comma_number:
      out = out.replace(mark, "")
    else:
      out = out.replace(mark, " ")
  # mcq_acc.processPunctuation passes re.UNICODE (32) as `count`: only the first 32 periods go
  return _MVB_PERIOD.sub("", out, count=32)


def mvbench_process(answer: str) -> str:
  """``mvbench/utils.py::mcq_acc``'s ``process``: an option letter A-E, else the cleaned lowercase text."""
  match = _MVB_OPTION.match(answer.strip())
  if match:
    return match.group(1).upper()
  text = answer.replace("\n", " ").replace("\t", " ").strip()
  text = _mvbench_punctuation(text)
  text = text.strip("'").strip('"').strip(")").strip("(").strip().lower()
  match = _MVB_LETTER.search(text)
  return match.group(1).upper() if match else text


# --- Video-MME, MLVU: extract_mcq_answer ---------------------------------------------------------------------

_MCQ_PHRASES = ("the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is",
                "best answer is", "the correct option is", "correct option is", "the best option is", "best option is",
                "the choice is", "choice is", "the correct choice is", "correct choice is", "i choose", "i select",
                "i pick", "my answer is", "my choice is",
                "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选", "答えは")
# (pattern around the letter, rank): a higher rank wins, then the later position
_MCQ_FORMS = (("({})", 6), ("{}.", 5), ("{}:", 4), ("{})", 3), ("{} ", 2))


def extract_mcq_answer(response: str, choices: Optional[Sequence[str]] = None) -> str:
  """``_task_utils/mcq_extract.py::extract_mcq_answer``: the best-ranked letter, ``""`` if none.

  ``choices`` defaults, as there, to A-H (Video-MME and MLVU pass A-D).

  Ranks: a standalone letter at the start (10) or end (9), the first letter
  after an answer phrase (7), ``(X)`` (6), ``X.`` (5), ``X:`` (4), ``X)`` (3),
  ``X `` (2); the last occurrence of any letter (0) only when nothing else
  matched. Ties go to the later position.
  """
  if not response or not response.strip():
    return ""
  letters = list(choices or LETTERS)
  text = response.strip()
  for mark in (",", ".", "!", "?", ";", ":", "'", '"'):  # mcq_extract.py::extract_mcq_answer: one strip per mark
    text = text.strip(mark)
  text = f" {text} "
  found: list[tuple[int, int, str]] = []  # (rank, position, letter)
  for form, rank in _MCQ_FORMS:
    for letter in letters:
      position = text.rfind(form.format(letter))
      if position != -1:
        found.append((rank, position, letter))
  lower = text.lower()
  for phrase in _MCQ_PHRASES:
    at = lower.find(phrase)
    if at != -1:
      for letter in letters:
        position = text.find(letter, at + len(phrase))  # extract_mcq_answer: any occurrence, inside words too
        if position != -1:
          found.append((7, position, letter))
  core = text.strip()
  for letter in letters:
    if core.startswith(letter) and (len(core) == 1 or not core[1].isalpha()):
      found.append((10, 0, letter))
  for letter in letters:
    if core.endswith(letter) and (len(core) == 1 or not core[-2].isalpha()):
      found.append((9, len(text) - 1, letter))
  if not found:
    found = [(0, text.rfind(letter), letter) for letter in letters if letter in text]
  if not found:
    return ""
  best = found[0]
  for item in found[1:]:  # the first of equal (rank, position) stays, as a stable descending sort keeps it
    if item[:2] > best[:2]:
      best = item
  return best[2]


# videomme/utils.py::extract_characters_regex at v0.7.1: two pairs of prefixes are fused by a missing comma
_V071_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                  "The best option isThe correct option is", "Best answer:Best option:")


def videomme_v0_7_1(response: str) -> str:
  """Video-MME's letter parser up to v0.7.1: the first A-D after removing answer prefixes; ``""`` if none."""
  text = response.strip()
  for prefix in _V071_PREFIXES:
    text = text.replace(prefix, "")
  match = re.search("[ABCD]", text)
  # videomme extract_characters_regex (v0.7.1): a long answer without a letter gives "" (as no letter does)
  if len(text.split()) > 10 and not match:
    return ""
  return match[0] if match else ""


def mlvu_v0_7_1(response: str) -> str:
  """MLVU's parser up to v0.7.1: the character before the first ``)``, else the whole stripped response."""
  text = response.strip()
  if ")" in text:
    at = text.index(")")
    return text[at - 1:at]  # mlvu extract_characters_regex: ")" first gives text[-1:0] == ""
  return text


# --- LongVideoBench -------------------------------------------------------------------------------------------

_LVB_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer", "The best option is",
                 "The correct option is", "Best answer:", "Best option:")


def longvideobench_letter(response: str, letters: str, seed: int) -> Parsed:
  """``longvideobench/utils.py::parse_multi_choice_response``: the first capital A-E anywhere, else a random letter.

  Args:
    response: the model's answer.
    letters: the question's option letters (the random draw's choices; the
      search always looks for A-E).
    seed: the random draw's seed.

  Returns:
    The letter, with ``fallback`` set when it was drawn.
  """
  text = response.strip()
  for prefix in _LVB_PREFIXES:
    text = text.replace(prefix, "")
  # longvideobench parse_multi_choice_response: A-E whatever the option count (its "more than 10 words and no
  # letter" rule draws at random too, so this one search covers it)
  match = re.search("[ABCDE]", text)
  if match:
    return Parsed(match[0])
  return Parsed(random.Random(seed).choice(list(letters)), fallback=True, seed=seed)


# --- EgoSchema ------------------------------------------------------------------------------------------------


def egoschema_letter(response: str, option_lines: Sequence[str], seed: int) -> Parsed:
  """``egoschema/utils.py::parse_multi_choice_response`` (MMMU style) over letters A-E.

  ``(X)``, ``X `` and ``X.`` are looked for first (the earliest last
  occurrence wins); failing those, in a response of more than five words, an
  option's text, which is the whole option line (``"A. ..."``) as lmms-eval's
  ``get_multi_choice_info`` builds it; failing that, a random letter.

  Args:
    response: the model's answer.
    option_lines: the five option lines as released (``"A. ..."``).
    seed: the random draw's seed.
  """
  letters = LETTERS[:5]
  # egoschema/utils.py::get_multi_choice_info: an option's "text" is its whole line, letter included
  answers = {letter: str(line).strip() for letter, line in zip(letters, option_lines)}
  for mark in (",", ".", "!", "?", ";", ":", "'"):  # egoschema parse_multi_choice_response: no whitespace strip
    response = response.strip(mark)
  text = f" {response} "
  found = [f"({letter})" for letter in letters if f"({letter})" in text]
  found += [f"{letter} " for letter in letters if f"{letter} " in text]
  found += [f"{letter}." for letter in letters if f"{letter}." in text]
  by_text = False
  if not found and len(text.split()) > 5:
    found = [letter for letter, answer in answers.items() if answer.lower() in text.lower()]
    by_text = bool(found)
  if not found:
    return Parsed(random.Random(seed).choice(list(letters)), fallback=True, seed=seed)
  if by_text:
    starts = [text.lower().rfind(answers[c].lower()) for c in found]
  else:
    starts = [text.rfind(c) for c in found]
  pick = min(range(len(found)), key=starts.__getitem__)  # np.argmin: the first of equal minima
  return Parsed(found[pick].replace("(", "").replace(")", "").replace(".", "").strip())


# --- Grounding ------------------------------------------------------------------------------------------------

_CH_KEYWORDS = ("starts", "ends", "happens in", "start time", "end time", "start", "end", "happen")
_CH_CLOCK_RANGE = re.compile(r"\b(\d{1,2}:\d{2}(?::\d{2})?)\s*[–-]\s*(\d{1,2}:\d{2}(?::\d{2})?)\b")
_CH_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*[–-]\s*(\d+(?:\.\d+)?)")
_CH_NUMBER = re.compile(r"\b(\d+(?:\.\d+)?)\b")
_CH_CLOCK = re.compile(r"\b(\d{1,2}:\d{2}(?::\d{2})?)\b")
_CH_SECONDS_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*s?\s*[–-]\s*(\d+(?:\.\d+)?)\s*s?")


def _clock(text: str) -> float:
  parts = [float(p) for p in text.split(":")]
  if len(parts) == 3:
    return parts[0] * 3600 + parts[1] * 60 + parts[2]
  return parts[0] * 60 + parts[1]


def _pairs(values: list) -> list:
  values = values[:len(values) // 2 * 2]
  return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def charades_extract_time(text: str) -> list[list[float]]:
  """``charades_sta/utils.py::extract_time``: at most one ``[start, end]``, put in order.

  The text is lowercased, every ``to`` becomes ``-`` (inside words too) and it
  is split into sentences at ``!``, ``?`` and newlines; sentences with a time
  keyword are searched (all of them when none has one) for, in turn: a clock
  range, a number range, clock times (paired), each sentence's first number
  (paired), numbers with an ``s`` unit around a dash.
  """
  # charades_sta/utils.py::extract_time: every "to" becomes "-", inside words too
  text = text.lower().replace("a specific example is : 20.8 - 30.0 seconds", "").replace("to", "-")
  sentences = re.split(r"[!?\n]", text)
  chosen = [s for s in sentences if any(k in s for k in _CH_KEYWORDS)] or sentences
  found: list = []
  for sentence in chosen:
    matches = _CH_CLOCK_RANGE.findall(sentence)
    if matches:
      found = [[_clock(a), _clock(b)] for a, b in matches]
      break
  if not found:
    for sentence in chosen:
      matches = _CH_RANGE.findall(sentence)
      if matches:
        found = [[float(a), float(b)] for a, b in matches]
        break
  if not found:
    found = _pairs([_clock(t) for s in chosen for t in _CH_CLOCK.findall(s)])
  if not found:
    firsts = [_CH_NUMBER.findall(s) for s in chosen]
    found = _pairs([float(numbers[0]) for numbers in firsts if numbers])
  if not found:
    for sentence in chosen:
      matches = _CH_SECONDS_RANGE.findall(sentence)
      if matches:
        found = [[float(a), float(b)] for a, b in matches]
        break
  return [[a, b] if b > a else [b, a] for a, b in found[:1]]  # charades extract_time: the first pair, ordered


_TL_CLOCK = re.compile(r"\b(\d{1,2}:\d{2}:\d{2}(?:\.\d+)?|\d{1,2}:\d{2}(?:\.\d+)?)\b")
_TL_RANGES = (re.compile(r"(\d+\.?\d*)\s*-\s*(\d+\.?\d*)"), re.compile(r"(\d+\.?\d*)\s+to\s+(\d+\.?\d*)"))
_TL_NUMBER = re.compile(r"\b\d+\.?\d*\b")  # lmms-eval timelens/utils.py::extract_time
_TL_OFFICIAL_NUMBER = re.compile(r"\b(\d+\.\d+|\d+)\b")  # TimeLens timelens/utils.py::extract_time


def _timelens_clock(text: str) -> float:
  parts = text.split(":")
  if len(parts) == 3:
    return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
  return int(parts[0]) * 60 + float(parts[1])


def _timelens_time(text: str, number: re.Pattern) -> list[Span]:
  text = text.lower()
  clocks = _TL_CLOCK.findall(text)
  found = _pairs([float(_timelens_clock(t)) for t in clocks])
  if not found:
    for pattern in _TL_RANGES:
      matches = pattern.findall(text)
      if matches:
        found = [(float(a), float(b)) for a, b in matches]
        break
  if not found:
    found = _pairs([float(n) for n in number.findall(text)])
  return found


def timelens_extract_time(text: str) -> list[Span]:
  """lmms-eval ``timelens/utils.py::extract_time``: every pair, clock times first, in the order written."""
  return _timelens_time(text, _TL_NUMBER)


def timelens_official_extract_time(text: str) -> list[Span]:
  """TimeLens ``timelens/utils.py::extract_time`` (as lmms-eval's, with its own bare-number pattern)."""
  return _timelens_time(text, _TL_OFFICIAL_NUMBER)


def timelens_official_span(text: str, duration: float) -> Parsed:
  """The span TimeLens' evaluation scores: ``evaluation/eval_dataloader.py`` then ``compute_metrics.py``.

  No pair read gives ``[duration + 10, duration + 20]`` (``fallback``); each
  time is rounded to whole seconds (``round``, halves to even: the datasets
  set no ``UNIT``, so 1.0); the first pair is scored, not reordered.
  """
  found = timelens_official_extract_time(text)
  fallback = not found
  if fallback:
    found = [(duration + 10, duration + 20)]
  start, end = found[0]
  # eval_dataloader.py: round(t / UNIT) * UNIT with UNIT = 1.0; compute_metrics.py: timestamps[0]
  return Parsed((round(start / 1.0) * 1.0, round(end / 1.0) * 1.0), fallback=fallback)


def iou_lmms_eval(a: Sequence[float], b: Sequence[float]) -> float:
  """IoU as lmms-eval's ``charades_sta`` and ``timelens`` tasks compute it: 0 when the hull has no length."""
  hull = max(a[1], b[1]) - min(a[0], b[0])
  return 0.0 if hull <= 0 else max(min(a[1], b[1]) - max(a[0], b[0]), 0) / hull


def iou_timelens(gt: Sequence[float], pred: Sequence[float]) -> float:
  """IoU as TimeLens ``timelens/utils.py::iou`` computes it: no guard (a zero hull raises ZeroDivisionError)."""
  return max(min(gt[1], pred[1]) - max(gt[0], pred[0]), 0) / (max(gt[1], pred[1]) - min(gt[0], pred[0]))


# --- Dispatch -------------------------------------------------------------------------------------------------


def parse(sample: Sample, response: str, parser: str = Parser.LMMS_EVAL, base_seed: int = 0) -> Parsed:
  """The reference's reading of ``response`` to ``sample``.

  Args:
    sample: the question (EgoSchema reads ``meta["option_lines"]``, else builds
      ``"{letter}. {option}"``; the official TimeLens rule reads ``duration``).
    response: the model's answer as the wrapper returns it.
    parser: :class:`Parser`.
    base_seed: mixed into :func:`fallback_seed` with the question id.

  Returns:
    :class:`Parsed`.
  """
  parser = Parser(parser)
  benchmark, _ = base_benchmark(sample.benchmark)
  if parser is Parser.TIMELENS and benchmark not in TIMELENS:
    raise ValueError(f"parser 'timelens' is for the TimeLens sets, not {benchmark}")
  if benchmark == "mvbench":
    return Parsed(mvbench_process(response))
  if benchmark in ("videomme", "mlvu_dev"):
    if parser is Parser.LMMS_EVAL_0_7_1:
      return Parsed((videomme_v0_7_1 if benchmark == "videomme" else mlvu_v0_7_1)(response))
    return Parsed(extract_mcq_answer(response, "ABCD"))
  if benchmark == "longvideobench":
    return longvideobench_letter(response, sample.letters, fallback_seed(sample.id, base_seed))
  if benchmark == "egoschema":
    lines = sample.meta.get("option_lines") or [f"{k}. {o}" for k, o in zip(LETTERS, sample.options)]
    return egoschema_letter(response, lines, fallback_seed(sample.id, base_seed))
  if benchmark == "charades_sta":
    found = charades_extract_time(response)
    return Parsed(tuple(found[0]) if found else None)
  if benchmark in TIMELENS:
    if parser is Parser.TIMELENS:
      if sample.duration is None:
        raise ValueError(f"{sample.id}: the TimeLens rule needs the video duration")
      return timelens_official_span(response, sample.duration)
    found = timelens_extract_time(response)
    return Parsed(found[0] if found else None)
  raise ValueError(f"unknown benchmark {benchmark!r}")
