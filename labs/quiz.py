"""Exam practice: scenario questions per lab (labs/NN-slug/quiz.yaml), one best answer of four, each option with
its explanation, pointing at the line of this repository that made the decision.

Numbers in explanations are facts with a source: each question lists them (`facts`) with the project rule that
yields them (`RULES`: the calculators, the lifecycle minimums, the config constants), and tests/labs/test_quiz.py
recomputes every one — so a question cannot drift from the code it teaches.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from .grading import ROOT

LETTERS = "ABCD"


def _rules() -> dict[str, Callable[..., int | float]]:
    from refarch.constructs.aws.dr import TIER_OBJECTIVES
    from refarch.constructs.aws.identity import GROUP_PRECEDENCE
    from refarch.constructs.aws.lifecycle import INFREQUENT_ACCESS_EARLIEST_DAY, MINIMUM_STORAGE_DAYS, StorageClass
    from refarch.stacks.babybloom.config import AUTOSCALE_STEP
    from refarch.stacks.selfnest.config import SQS_VISIBILITY_PER_CONSUMER_TIMEOUT
    from refarch.tools import calculators

    return {
        "dynamodb_rcu": lambda **kw: calculators.dynamodb_capacity(**kw).rcu,
        "dynamodb_wcu": lambda **kw: calculators.dynamodb_capacity(**kw).wcu,
        "dynamodb_max_item_kb": lambda: calculators.DYNAMODB_MAX_ITEM_KB,
        "cosmos_ru_per_second": lambda **kw: calculators.cosmos_ru_per_second(**kw),
        "cosmos_read_ru": lambda **kw: float(calculators.cosmos_read_ru(**kw)),
        "cosmos_autoscale_step": lambda: AUTOSCALE_STEP,
        "cosmos_autoscale_max_for": lambda **kw: math.ceil(calculators.cosmos_ru_per_second(**kw) / AUTOSCALE_STEP)
        * AUTOSCALE_STEP,
        "usable_hosts": lambda prefix: calculators.usable_hosts(prefix),
        "prefix_for_hosts": lambda hosts: calculators.prefix_for_hosts(hosts),
        "aws_reserved_addresses": lambda: calculators.AWS_RESERVED_ADDRESSES_PER_SUBNET,
        "min_visibility_timeout": lambda lambda_timeout: calculators.min_visibility_timeout(lambda_timeout),
        "visibility_per_timeout": lambda: SQS_VISIBILITY_PER_CONSUMER_TIMEOUT,
        "minimum_storage_days": lambda storage_class: MINIMUM_STORAGE_DAYS[StorageClass(storage_class)],
        "infrequent_access_earliest_day": lambda: INFREQUENT_ACCESS_EARLIEST_DAY,
        "group_precedence": lambda group: GROUP_PRECEDENCE[group],
        # Lab 15: the recovery objectives each DR tier is built for, and Route 53's detection time.
        "dr_rto_minutes": lambda tier: TIER_OBJECTIVES[tier].rto_minutes,
        "dr_rpo_minutes": lambda tier: TIER_OBJECTIVES[tier].rpo_minutes,
        "failover_detection_seconds": lambda interval, threshold: interval * threshold,
    }


@dataclass(frozen=True, kw_only=True)
class Option:
    text: str
    correct: bool
    why: str


@dataclass(frozen=True, kw_only=True)
class Fact:
    value: float
    rule: str
    args: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Question:
    lab: str
    id: str
    scenario: str
    options: tuple[Option, ...]
    code: str          # path in this repository
    code_line: str     # text on the line the question is about
    facts: tuple[Fact, ...]

    @property
    def answer(self) -> Option:
        [correct] = [option for option in self.options if option.correct]
        return correct


def quiz_file(number: str) -> Path:
    from .catalog import lab_by_number

    return lab_by_number(number).directory / "quiz.yaml"


def load(number: str) -> list[Question]:
    path = quiz_file(number)
    shown = path.relative_to(ROOT)
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
        return [Question(lab=number, id=item["id"], scenario=item["scenario"].strip(),
                         options=tuple(Option(text=option["text"].strip(), correct=bool(option.get("correct")),
                                              why=option["why"].strip()) for option in item["options"]),
                         code=item["code"]["path"], code_line=item["code"]["line"],
                         facts=tuple(Fact(value=fact["value"], rule=fact["rule"], args=fact.get("args", {}))
                                     for fact in item.get("facts", [])))
                for item in items]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise ValueError(f"{shown}: not a valid quiz ({type(error).__name__}: {error})") from None


def questions(number: str | None) -> list[Question]:
    from .catalog import LABS, lab_by_number

    numbers = [lab_by_number(number).number] if number else list(LABS)
    return [question for each in numbers for question in load(each)]


def shuffled(items: list[Question], seed: int | None) -> list[tuple[Question, list[Option]]]:
    generator = random.Random(seed)  # noqa: S311 - practice questions, not security
    order = list(items)
    generator.shuffle(order)
    return [(question, generator.sample(list(question.options), len(question.options))) for question in order]


def as_json(asked: list[tuple[Question, list[Option]]]) -> str:
    return json.dumps([{
        "lab": question.lab, "id": question.id, "scenario": question.scenario,
        "options": [{"letter": letter, "text": option.text, "correct": option.correct, "why": option.why}
                    for letter, option in zip(LETTERS, options, strict=False)],
        "code": f"{question.code}: {question.code_line}"} for question, options in asked])


def ask(asked: list[tuple[Question, list[Option]]], answers: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """Ask each question; explain every option after each answer; print the score. End of input stops early."""
    score = answered = 0
    for number, (question, options) in enumerate(asked, start=1):
        print(f"\nQ{number}/{len(asked)} (lab {question.lab}) {question.scenario}", file=out)
        for letter, option in zip(LETTERS, options, strict=False):
            print(f"  {letter}. {option.text}", file=out)
        choice = ""
        while len(choice) != 1 or choice not in LETTERS[:len(options)]:
            print(f"Your answer [{LETTERS[:len(options)]}]: ", end="", file=out, flush=True)
            line = answers.readline()
            if not line:
                print("\n(end of input)", file=out)
                return report(score, answered, out)
            choice = line.strip().upper()[:1]
        answered += 1
        picked = options[LETTERS.index(choice)]
        score += picked.correct
        print("Right." if picked.correct else f"Not quite: the best answer is "
              f"{LETTERS[options.index(question.answer)]}.", file=out)
        for letter, option in zip(LETTERS, options, strict=False):
            print(f"  {letter} {'(best)' if option.correct else '      '} {option.why}", file=out)
        print(f"  See {question.code}: {question.code_line}", file=out)
    return report(score, answered, out)


def report(score: int, answered: int, out: TextIO) -> int:
    percent = round(100 * score / answered) if answered else 0
    print(f"\nScore: {score}/{answered} ({percent} %)", file=out)
    return 0
