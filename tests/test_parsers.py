"""The answer parsers against lmms-eval 0.7.3's own task functions, on many realistic model outputs."""

import functools
import importlib
import random

import pytest

from ottvid_jax.eval import parsers
from ottvid_jax.eval.parsers import Parsed, Parser
from ottvid_jax.eval.sample import Sample
from tests import refs

OPTION_SETS = (
    ("The man is cooking dinner", "The man is washing dishes", "The man is reading a book", "The man is sleeping",
     "C cleans the table"),
    ("3", "4", "5", "6", "7"),
    ("red", "blue", "green", "yellow", "Black and white"),
    ("Yes", "No", "Not sure", "Both A and B", "None of the above"),
)

# Answer shapes seen from video LLMs; {L} is a letter, {T} its option text.
SHAPES = (
    "{L}", "({L})", "{L}.", "{L})", "{L}:", " {L} ", "{L}\n", "{L}.\n\nExplanation: the video shows it.",
    "({L}) {T}", "{L}. {T}", "{L}) {T}", "{L}: {T}", "{l}", "({l})", "{l}. {T}", "Answer: {L}", "Answer: ({L})",
    "The answer is {L}.", "The answer is ({L}) {T}.", "The best answer is: {L}", "The best answer is {L}. {T}",
    "The correct answer is {L}, {T}.", "Best option: ({L}) {T}", "Best option:({L}", "{L}) {T}\n(B) other",
    "Option {L}", "option {l}", "I choose {L} because the person is clearly visible.", "答案是{L}", "答案：{L}",
    "选{L}。", "정답은 {L}입니다", "{T}", "{T}.", "The answer is {T}.", "It is {T}", "'{L}'", '"{L}"', "**{L}**",
    "Based on the video, the person picks up a cup and then puts it down, so the answer is ({L}) {T}.",
    "Between A and C, the correct one is {L}.", "{L} or B", "A, B and {L}", "Not {L}, it is D.",
    "The video does not show this clearly, but I think it is {T}.", "{L} {T} {L}", "({L}) {T} (E) something",
    "Among the options, ({L}) matches what the video shows at the end.",
)
FREE = (
    "", " ", "\n", "None of the options are correct.", "I cannot determine the answer from the video.",
    "The video shows a man cutting vegetables in a kitchen and then washing his hands in the sink.",
    "A man is walking", "3", "2 times", "Because", "DVD player", "I", "Eating", "B3", "the answer is because of him",
    "The best option isThe correct option is C", "Best answer:Best option: D", "The answer E", "e.", "A.B.C.",
    "视频中的人在做饭", "Let me think. The man opens the fridge. Then he takes out milk. Finally he closes it.",
    ")A", "(", ")", "(A", "A)B)", "(A)(B)", "D.A book", "Answer:\n\nC", "a", "The answer is: ", "ABCD",
)


def responses():
  out = list(FREE)
  for options in OPTION_SETS:
    for shape in SHAPES:
      for i, letter in enumerate("ABCDE"):
        out.append(shape.format(L=letter, l=letter.lower(), T=options[i]))
  return out


RESPONSES = responses()


@functools.cache
def ref(task: str):
  """``lmms_eval.tasks.<task>.utils`` (``mcq_extract`` for the shared extractor)."""
  refs.torchvision()
  if task == "mcq_extract":
    return importlib.import_module("lmms_eval.tasks._task_utils.mcq_extract")
  return importlib.import_module(f"lmms_eval.tasks.{task}.utils")


class _Drawn:
  """Stands in for the reference module's ``random``: a draw returns a marker instead of a letter."""

  @staticmethod
  def choice(_):
    return "<random>"


def test_many_responses():
  assert len(RESPONSES) > 900


def test_mvbench_score_equals_mcq_acc():
  mv = ref("mvbench")
  for response in RESPONSES:
    processed = parsers.mvbench_process(response)
    for gold in "ABCDE":
      assert mv.mcq_acc(gold, response) == int(processed == gold), (response, gold)


def test_mvbench_process_quirks():
  assert parsers.mvbench_process("a. the cup") == "A"  # "X. ..." first, case-insensitive
  assert parsers.mvbench_process("(c) blue") == "C"
  assert parsers.mvbench_process("the cup") == "the cup"  # no letter: the cleaned text
  assert parsers.mvbench_process("I think so") == "i think so"  # "I" is no option letter
  assert parsers.mvbench_process("答案是A") == "答案是a"  # no word boundary before A
  many = "x." * 40  # only the first 32 periods are removed (re.UNICODE passed as count)
  assert parsers.mvbench_process(many) == "x" * 32 + "x." * 8


@pytest.mark.parametrize("choices", ["ABCD", "ABCDEFGH"])
def test_extract_mcq_answer_equals_lmms_eval(choices):
  extract = ref("mcq_extract").extract_mcq_answer
  for response in RESPONSES:
    assert parsers.extract_mcq_answer(response, choices) == extract(response, choices=list(choices)), response
  if choices == "ABCDEFGH":
    assert all(parsers.extract_mcq_answer(r) == extract(r) for r in RESPONSES)


def test_videomme_and_mlvu_process_results_equal():
  vm, ml = ref("videomme"), ref("mlvu")
  for i, response in enumerate(RESPONSES):
    gold = "ABCD"[i % 4]
    sample = Sample(id=str(i), benchmark="videomme", task="short", video="v.mp4", question="q",
                    options=OPTION_SETS[0][:4], answer=gold)
    doc = {"question_id": str(i), "duration": "short", "domain": "Knowledge", "sub_category": "Law",
           "task_type": "OCR Problems", "answer": gold, "videoID": "v"}
    theirs = vm.videomme_process_results(doc, [response])["videomme_perception_score"]
    ours = parsers.parse(sample, response)
    assert ours.value == theirs["pred_answer"] and not ours.fallback
    assert float(ours.value == gold) == theirs["score"]
    theirs = ml.mlvu_process_results({"question": "q", "task_type": "count", "answer": gold}, [response])
    mlvu = dataclass_replace(sample, benchmark="mlvu_dev", task="count")
    assert parsers.parse(mlvu, response).value == theirs["mlvu_percetion_score"]["pred_answer"]


def dataclass_replace(sample, **changes):
  import dataclasses  # pylint: disable=import-outside-toplevel
  return dataclasses.replace(sample, **changes)


def test_videomme_v0_7_1():
  # videomme/utils.py::extract_characters_regex at v0.7.1 (88b23e2b), worked by hand
  cases = {
      "A": "A", "(B) blue": "B", "The answer is C.": "C", "The best answer is D": "D",
      "Answer: B": "A",  # the first capital A-D anywhere: the "A" of "Answer"
      "Best answer: C": "B",  # "Best answer:" alone is not removed (fused with "Best option:")
      "Best answer:Best option: D": "D", "The best option isThe correct option is C": "C",
      "The best option is C": "C",  # not removed (fused with the next prefix); no capital before C
      "the answer is c": "", "": "", "   ": "",
      "I really do not think the video shows any of these things happening at all": "",  # > 10 words, no letter
      "I really do not think the video shows any of these things clearly, maybe D": "D",
      "Eating": "", "E": "", "DVD": "D",
  }
  for response, expected in cases.items():
    assert parsers.videomme_v0_7_1(response) == expected, response
    sample = Sample(id="x", benchmark="videomme", task="short", video="v", question="q", options=("a",) * 4)
    assert parsers.parse(sample, response, Parser.LMMS_EVAL_0_7_1).value == expected


def test_mlvu_v0_7_1():
  # mlvu/utils.py::extract_characters_regex at v0.7.1 (code of e5f70443), worked by hand
  cases = {"A) the cup": "A", " (B) blue": "B", "C": "C", "C.": "C.", "the answer is (D)": "D",
           ")A": "", "no idea": "no idea", "B) x C) y": "B", "": "", "  A  ": "A"}
  for response, expected in cases.items():
    assert parsers.mlvu_v0_7_1(response) == expected, response


def test_longvideobench_equals_parse_multi_choice_response(monkeypatch):
  lvb = ref("longvideobench")
  monkeypatch.setattr(lvb, "random", _Drawn)
  for count in (4, 5):
    letters = "ABCDE"[:count]
    index2ans = {k: OPTION_SETS[0][i] for i, k in enumerate(letters)}
    for response in RESPONSES:
      theirs = lvb.parse_multi_choice_response(response, list(letters), index2ans)
      ours = parsers.longvideobench_letter(response, letters, seed=7)
      if theirs == "<random>":
        assert ours.fallback and ours.seed == 7 and ours.value in letters, response
      else:
        assert ours == Parsed(theirs), response


def test_longvideobench_process_results_when_deterministic(monkeypatch):
  lvb = ref("longvideobench")
  monkeypatch.setattr(lvb, "random", _Drawn)
  doc = {"id": "q1", "duration_group": 600, "question_category": "S2E", "correct_choice": 2,
         **{f"option{i}": OPTION_SETS[2][i] for i in range(4)}, "option4": "N/A"}
  sample = Sample(id="q1", benchmark="longvideobench", task="S2E", video="v", question="q",
                  options=OPTION_SETS[2][:4], answer="C")
  for response in RESPONSES:
    theirs = lvb.longvideobench_process_results(doc, [response])["lvb_acc"]["parsed_pred"]
    ours = parsers.parse(sample, response)
    assert ours.fallback == (theirs == "<random>")
    if not ours.fallback:
      assert ours.value == theirs


def test_random_fallbacks_are_deterministic():
  sample = Sample(id="lvb/17", benchmark="longvideobench", task="S2E", video="v", question="q",
                  options=("a", "b", "c", "d"), answer="A")
  first = parsers.parse(sample, "no idea at all")
  assert first.fallback and first.seed == parsers.fallback_seed("lvb/17")
  assert all(parsers.parse(sample, "no idea at all") == first for _ in range(5))
  assert first.value == random.Random(first.seed).choice("ABCD")
  others = {parsers.parse(dataclass_replace(sample, id=f"lvb/{i}"), "?").value for i in range(40)}
  assert others == set("ABCD")  # seeds differ per question
  assert parsers.fallback_seed("x", 1) != parsers.fallback_seed("x", 0)
  ego = Sample(id="e1", benchmark="egoschema", task="egoschema", video="v", question="q", options=OPTION_SETS[0],
               answer="A")
  drawn = parsers.parse(ego, "hmm")
  assert drawn.fallback and drawn == parsers.parse(ego, "hmm") and drawn.value in "ABCDE"


def test_egoschema_equals_lmms_eval(monkeypatch):
  ego = ref("egoschema")
  monkeypatch.setattr(ego, "random", _Drawn)
  for options in OPTION_SETS:
    lines = [f"{k}. {o}" for k, o in zip("ABCDE", options)]
    doc = {"option": lines, "video_idx": "v", "answer": 1}
    index2ans, choices = ego.get_multi_choice_info(doc)
    extra = [f"{line} is what happens" for line in lines] + [f"I think {o.lower()} is right here" for o in options]
    for response in RESPONSES + extra:
      theirs, matched = ego.parse_multi_choice_response(response, choices, index2ans)
      ours = parsers.egoschema_letter(response, lines, seed=3)
      assert ours.fallback == (theirs == "<random>") == (not matched), response
      if not ours.fallback:
        assert ours.value == theirs, response
        index = ego.egoschema_process_results_generation(doc, [response])["score"]["pred"]
        assert "ABCDE".index(ours.value) == index


def test_egoschema_matches_option_lines():
  lines = ["A. c cooks", "B. c washes the dishes", "C. c reads", "D. c sleeps", "E. c runs"]
  assert parsers.egoschema_letter("I am quite sure that b. c washes the dishes here", lines, 0).value == "B"
  # the option text alone is not an option line, so it falls back
  assert parsers.egoschema_letter("I am quite sure that c washes the dishes here", lines, 0).fallback


SPANS = (
    "The event happens in {a} - {b} seconds.", "{a} - {b}", "{a}-{b}", "{a} – {b} seconds", "{a} to {b}",
    "from {a} to {b} seconds", "{a}s - {b}s", "{a}s to {b}s", "Start: {a}, End: {b}", "start time {a}\nend time {b}",
    "The event starts at {a} seconds and ends at {b} seconds.", "[{a}, {b}]", "({a}, {b})", "{a} and {b}",
    "The event happens in the {a} - {b} seconds. It happens again at 50.0 - 60.0 seconds.",
    "The event 'person opens the door' happens in the {a} - {b} seconds.",
    "A specific example is : 20.8 - 30.0 seconds. The event happens in {a} - {b} seconds.",
    "It happens at {a}.", "{a}", "{a} {b} {c}", "{a}, {b}, {c} seconds", "between {a}s and {b}s, then {c}s",
    "The answer is {a} - {b} - {c}.", "Today at {a} to {b}", "tomato {a} {b}", "The event happens in {a}-{b}s!",
)
CLOCKS = ("00:{m}:{s} - 00:{m2}:{s2}", "{m}:{s} - {m2}:{s2}", "{m}:{s} to {m2}:{s2}", "from {m}:{s}.5 to {m2}:{s2}",
          "at {m}:{s}", "{m}:{s}–{m2}:{s2}", "01:{m}:{s} and 1:{m2}:{s2}", "{m}:{s} - {b} seconds")
FREE_SPANS = ("", " ", "I cannot find the event.", "The person opens the door near the end of the video.",
              "The event happens at the beginning.", "1:2:3", "3.", "12.5.7", "-5 - -3", "5-", "- 7", "1e3 - 2e3",
              "The event happens in 10 to 5 seconds", "the event happens in 30.0 - 24.3 seconds.",
              "99:99 - 100:00", "1:00:00.25 - 1:00:10.75", "starts 7 ends 3", "3 - 3")


def span_responses():
  out = list(FREE_SPANS)
  numbers = (("0", "6.9", "12"), ("24.3", "30.4", "7"), ("30.4", "24.3", "2.5"), ("5", "5", "5"), ("112.0", "3", "8"))
  for shape in SPANS:
    for a, b, c in numbers:
      out.append(shape.format(a=a, b=b, c=c))
  for shape in CLOCKS:
    for m, s, m2, s2 in (("00", "05", "00", "12"), ("1", "30", "2", "05"), ("02", "10", "01", "59")):
      out.append(shape.format(m=m, s=s, m2=m2, s2=s2, b="40"))
  return out


SPAN_RESPONSES = span_responses()


def test_many_span_responses():
  assert len(SPAN_RESPONSES) > 150


def test_charades_extract_time_equals_lmms_eval():
  extract = ref("charades_sta").extract_time
  for response in SPAN_RESPONSES:
    theirs = extract(response)
    ours = parsers.charades_extract_time(response)
    assert ours == theirs and len(ours) <= 1, response
    sample = Sample(id="c", benchmark="charades_sta", task="charades_sta", video="v.mp4", question="q",
                    span=(1.0, 2.0))
    assert parsers.parse(sample, response).value == (tuple(theirs[0]) if theirs else None)


def test_timelens_extract_time_equals_lmms_eval():
  extract = ref("timelens").extract_time
  for response in SPAN_RESPONSES:
    theirs = extract(response)
    assert parsers.timelens_extract_time(response) == theirs, response
    sample = Sample(id="t", benchmark="charades_timelens", task="t", video="v.mp4", question="q", span=(1.0, 2.0),
                    duration=30.0)
    assert parsers.parse(sample, response).value == (theirs[0] if theirs else None)


def test_timelens_reversed_pair_is_kept():
  assert parsers.timelens_extract_time("The event happens in 30.0 - 24.3 seconds.") == [(30.0, 24.3)]
  assert parsers.charades_extract_time("The event happens in 30.0 - 24.3 seconds.") == [[24.3, 30.0]]
  assert parsers.timelens_extract_time("from 1:05 to 2:10") == [(65.0, 130.0)]


def test_timelens_official():
  # TimeLens timelens/utils.py::extract_time + evaluation/eval_dataloader.py's rules, worked by hand
  official = parsers.timelens_official_extract_time
  assert official("The event happens in 24.3 - 30.4 seconds.") == [(24.3, 30.4)]
  assert official("00:01:05 - 00:01:10.5") == [(65.0, 70.5)]
  assert official("Starting time: 0.8 seconds. Ending time: 1.1 seconds") == [(0.8, 1.1)]
  assert official("at 3. and then 7.") == [(3.0, 7.0)]
  assert official("12.5.7") == [(12.5, 7.0)]
  assert official("nothing here") == []
  assert parsers.timelens_official_span("The event happens in 24.3 - 30.5 seconds.", 40.0) == Parsed((24.0, 30.0))
  assert parsers.timelens_official_span("in 2.5 - 3.5 s", 40.0) == Parsed((2.0, 4.0))  # halves to even
  assert parsers.timelens_official_span("30 - 20", 40.0) == Parsed((30.0, 20.0))  # not reordered
  assert parsers.timelens_official_span("no idea", 40.2) == Parsed((50.0, 60.0), fallback=True)
  sample = Sample(id="t", benchmark="activitynet_timelens", task="t", video="v.mp4", question="q", span=(1.0, 2.0),
                  duration=12.0)
  assert parsers.parse(sample, "nope", Parser.TIMELENS) == Parsed((22.0, 32.0), fallback=True)
  with pytest.raises(ValueError):
    parsers.parse(dataclass_replace(sample, benchmark="charades_sta"), "1 - 2", Parser.TIMELENS)


def test_iou_variants():
  charades, timelens = ref("charades_sta").iou, ref("timelens").iou
  rng = random.Random(0)
  pairs = [((0, 0), (0, 0)), ((5, 5), (5, 5)), ((3, 1), (2, 1)), ((0, 10), (10, 20)), ((0, 10), (0, 10)),
           ((2, 8), (4, 6)), ((8, 2), (4, 6)), ((-100, -100), (3, 4))]
  for _ in range(300):
    pairs.append(tuple(tuple(round(rng.uniform(-5, 40), rng.choice((0, 1))) for _ in range(2)) for _ in range(2)))
  for a, b in pairs:
    assert parsers.iou_lmms_eval(a, b) == charades(a, b) == timelens(a, b), (a, b)
  assert parsers.iou_timelens((0.0, 10.0), (5.0, 15.0)) == pytest.approx(1 / 3)
  assert parsers.iou_timelens((0.0, 10.0), (-100, -100)) == 0.0
  assert parsers.iou_timelens((3.0, 1.0), (2.0, 1.0)) == 0.0  # no guard: divides by the negative hull (-0.0)
  assert parsers.iou_lmms_eval((3.0, 1.0), (2.0, 1.0)) == 0.0
  with pytest.raises(ZeroDivisionError):
    parsers.iou_timelens((5.0, 5.0), (5.0, 5.0))
