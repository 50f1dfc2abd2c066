"""Exam practice: every lab's questions are well-formed, point at real code, and their numbers are the project's."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from refarch.labs import quiz
from refarch.labs.catalog import LABS
from refarch.tools import cli

from tests.entry_points import run_main

ROOT = Path(__file__).resolve().parents[2]
MINIMUM_PER_LAB = 3


def _format(value: float) -> str:
    return f"{value:g}"


@pytest.mark.parametrize("number", LABS)
def test_each_lab_has_scenario_questions_with_one_best_answer_of_four(number: str) -> None:
    questions = quiz.load(number)
    assert len(questions) >= MINIMUM_PER_LAB
    for question in questions:
        assert len(question.options) == 4, question.id
        assert sum(option.correct for option in question.options) == 1, question.id
        assert len({option.text for option in question.options}) == 4, question.id
        assert all(option.why for option in question.options), question.id
        assert question.id.startswith(f"{number}-")


def test_question_ids_are_unique() -> None:
    ids = [question.id for question in quiz.questions(None)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("number", LABS)
def test_explanations_point_at_a_line_of_this_repository(number: str) -> None:
    for question in quiz.load(number):
        path = ROOT / question.code
        assert path.is_file(), f"{question.id}: {question.code} does not exist"
        assert question.code_line in path.read_text(encoding="utf-8"), (
            f"{question.id}: {question.code} no longer holds {question.code_line!r}")


@pytest.mark.parametrize("number", LABS)
def test_numbers_in_questions_are_what_the_projects_rules_compute(number: str) -> None:
    rules = quiz._rules()
    for question in quiz.load(number):
        text = " ".join([question.scenario, *(f"{option.text} {option.why}" for option in question.options)])
        for fact in question.facts:
            assert fact.rule in rules, f"{question.id}: unknown rule {fact.rule}"
            assert rules[fact.rule](**fact.args) == fact.value, f"{question.id}: {fact}"
            assert _format(fact.value) in text, f"{question.id}: {fact.value} is not in the question's text"


def test_quiz_numbers_that_look_like_capacity_are_backed_by_facts() -> None:
    """A question about units (RCU, WCU, RU/s, usable addresses) states no number its facts do not vouch for."""
    units = ("RCU", "WCU", "RU/s", "usable")
    for question in quiz.questions(None):
        vouched = {_format(fact.value) for fact in question.facts}
        for option in question.options:
            words = option.text.replace(",", "").split()
            for index, word in enumerate(words[:-1]):
                if word.isdigit() and words[index + 1].startswith(units) and option.correct:
                    assert word in vouched, f"{question.id}: {word} {words[index + 1]}"


def refarch(*args: str) -> subprocess.CompletedProcess[str]:
    """`refarch quiz ARGS` in this process (tests/entry_points.py); the first call below starts the real process."""
    return run_main(cli.main, ["quiz", *args])


def test_refarch_quiz_json_is_shuffled_reproducibly_and_carries_the_explanations() -> None:
    first = subprocess.run([sys.executable, "-m", "refarch.tools.cli", "quiz", "07", "--json", "--seed", "1"],
                           capture_output=True, text=True, check=False, timeout=120)
    again = refarch("07", "--json", "--seed", "1")
    assert first.returncode == 0, first.stderr
    asked = json.loads(first.stdout)
    assert asked == json.loads(again.stdout)
    assert {item["id"] for item in asked} == {question.id for question in quiz.load("07")}
    assert all(len(item["options"]) == 4 and sum(option["correct"] for option in item["options"]) == 1
               for item in asked)
    orders = {tuple(item["id"] for item in json.loads(refarch("--json", "--seed", str(seed)).stdout))
              for seed in range(3)}
    assert len(orders) > 1


def test_refarch_quiz_scores_the_answers_given() -> None:
    asked = quiz.shuffled(quiz.load("07"), seed=5)
    right = "".join(f"{quiz.LETTERS[options.index(question.answer)]}\n" for question, options in asked)
    out = io.StringIO()
    quiz.ask(asked, answers=io.StringIO(right), out=out)
    assert out.getvalue().rstrip().endswith(f"Score: {len(asked)}/{len(asked)} (100 %)")
    wrong_first = "".join(f"{quiz.LETTERS[(options.index(question.answer) + 1) % 4]}\n"
                          for question, options in asked[:1])
    out = io.StringIO()
    quiz.ask(asked, answers=io.StringIO(wrong_first), out=out)
    assert "Not quite" in out.getvalue() and out.getvalue().rstrip().endswith("Score: 0/1 (0 %)")


def test_refarch_quiz_unknown_lab_is_one_line() -> None:
    result = refarch("99")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "there is no lab '99'" in result.stderr
