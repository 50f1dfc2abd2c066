"""`refarch`: exam calculators (`refarch calc ...`), lab graders (`refarch lab NN`, `refarch labs`), exam practice
(`refarch quiz [NN]`), a readable view of a synthesized stack (`refarch show PART`) and the bill (`refarch cost`).

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from refarch.constructs.aws.lifecycle import check_lifecycle, parse_transition

from . import calculators
from .cost import PricingError

USAGE_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (`refarch calc subnet: error: ...`) instead of usage plus the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _emit(args: argparse.Namespace, result: dict[str, object], text: str) -> int:
    print(json.dumps(result) if args.json else text)
    return 0


def _some_load(args: argparse.Namespace) -> None:
    if not args.reads and not args.writes:
        raise ValueError("give --reads N, --writes N or both (per second)")


def calc_dynamodb(args: argparse.Namespace) -> int:
    _some_load(args)
    capacity = calculators.dynamodb_capacity(
        item_kb=args.item_kb, reads_per_second=args.reads, writes_per_second=args.writes,
        consistency=args.consistency, transactional_writes=args.transactional_writes)
    return _emit(args, dict(capacity.as_dict()),
                 f"{capacity.rcu} RCU ({args.consistency} reads), {capacity.wcu} WCU"
                 f"{' (transactional writes)' if args.transactional_writes else ''}")


def calc_cosmos(args: argparse.Namespace) -> int:
    _some_load(args)
    ru = calculators.cosmos_ru_per_second(item_kb=args.item_kb, reads_per_second=args.reads,
                                          writes_per_second=args.writes, consistency=args.consistency)
    return _emit(args, {"ru_per_second": ru}, f"~{ru:g} RU/s ({args.consistency} consistency; an estimate — "
                                               f"measure the x-ms-request-charge of your real requests)")


def calc_subnet(args: argparse.Namespace) -> int:
    if (args.cidr is None) == (args.hosts is None):
        raise ValueError("give exactly one of --cidr CIDR or --hosts N")
    if args.cidr is not None:
        hosts = calculators.usable_hosts_in(args.cidr)
        return _emit(args, {"usable_hosts": hosts}, f"{args.cidr}: {hosts} usable addresses (AWS reserves 5)")
    prefix = calculators.prefix_for_hosts(args.hosts)
    return _emit(args, {"prefix": prefix}, f"/{prefix} ({calculators.usable_hosts(prefix)} usable addresses) is the "
                                           f"smallest subnet for {args.hosts} hosts")


def calc_lifecycle(args: argparse.Namespace) -> int:
    transitions = [parse_transition(text) for text in args.transition]
    check = check_lifecycle(transitions, args.expire)
    text = "valid" if check.valid else "invalid:\n" + "\n".join(f"  - {problem}" for problem in check.problems)
    _emit(args, check.as_dict(), text)
    return 0 if check.valid else 1


def calc_sqs(args: argparse.Namespace) -> int:
    minimum = calculators.min_visibility_timeout(args.lambda_timeout)
    return _emit(args, {"min_visibility_timeout": minimum},
                 f"visibility timeout >= {minimum} s (6 x the {args.lambda_timeout} s function timeout)")


def show_cost(args: argparse.Namespace) -> int:
    from . import cost, deployment

    if args.azure:
        if args.dr_tier is not None or args.env is not None:
            raise ValueError("--env and --dr-tier are Selfnest's; BabyBloom takes --stack dev|prod")
        bill = cost.azure_bill(deployment.babybloom_deployment(args.stack or "dev"))
    else:
        if args.stack is not None:
            raise ValueError("--stack is BabyBloom's: add --azure, or pick a Selfnest environment with --env")
        from refarch.stacks.selfnest.config import ConfigError

        try:
            synthesized = deployment.selfnest_deployment(args.env or "dev", args.dr_tier)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        bill = cost.aws_bill(synthesized)
    print(json.dumps(bill.as_dict(), indent=2) if args.json else cost.render(bill))
    return 0


def run_lab(args: argparse.Namespace) -> int:
    from refarch.labs import live
    from refarch.labs.catalog import grade, lab_by_number
    from refarch.labs.grading import grade as checks_of
    from refarch.labs.grading import report

    lab = lab_by_number(args.number)
    state = args.state or live.STATE
    if args.local and lab.number not in live.LIVE:
        raise ValueError(f"lab {lab.number} has no checks on a running deployment (labs that have: "
                         f"{', '.join(live.LIVE)})")
    if args.local and live.running(state) is None:
        raise ValueError(f"nothing is running in {state}: `make up` first, then `refarch lab {lab.number} --local`")
    if args.json:
        checks = checks_of(lab) + ((live.grade_live(lab.number, state) or []) if args.local else [])
        print(json.dumps([{"name": c.name, "passed": c.passed, "hint": c.hint, "found": c.found} for c in checks]))
        return 0 if all(c.passed for c in checks) else 1
    graded = grade(lab.number)
    if lab.number not in live.LIVE:
        return graded
    started = time.perf_counter()
    live_checks = live.grade_live(lab.number, state)
    if live_checks is None:
        print(f"(no local deployment is running, so its behaviour was not checked: `make up`, then "
              f"`refarch lab {lab.number} --local`)")
        return graded
    print()
    return max(graded, report(lab, live_checks, time.perf_counter() - started,
                               heading="on the running local deployment"))


def run_quiz(args: argparse.Namespace) -> int:
    from refarch.labs import quiz

    asked = quiz.shuffled(quiz.questions(args.lab), args.seed)
    if args.json:
        print(quiz.as_json(asked))
        return 0
    return quiz.ask(asked)


def run_show(args: argparse.Namespace) -> int:
    from .show import show

    print(show(args.part, environment=args.env, dr_tier=args.dr_tier))
    return 0


def list_labs(args: argparse.Namespace) -> int:
    from refarch.labs.catalog import LABS

    for lab in LABS.values():
        print(f"{lab.number}  {lab.title}  ({lab.exam})")
    return 0


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="refarch", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    calc = commands.add_parser("calc", help="exam calculators").add_subparsers(dest="calculator", required=True)

    def calculator(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = calc.add_parser(name, help=help, description=help)
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, consistencies, default in (
        ("dynamodb", calc_dynamodb, ("eventual", "strong", "transactional"), "eventual"),
        ("cosmos", calc_cosmos, ("strong", "bounded", "session", "prefix", "eventual"), "session"),
    ):
        sub = calculator(name, handler, f"{name} capacity for a steady load of point reads and writes")
        sub.add_argument("--item-kb", required=True, help="item size in KB")
        sub.add_argument("--reads", type=_non_negative_int, default=0, help="reads per second (default 0)")
        sub.add_argument("--writes", type=_non_negative_int, default=0, help="writes per second (default 0)")
        sub.add_argument("--consistency", choices=consistencies, default=default)
        if name == "dynamodb":
            sub.add_argument("--transactional-writes", action="store_true")
    subnet = calculator("subnet", calc_subnet, "usable addresses of an AWS subnet, or the subnet for N hosts")
    subnet.add_argument("--cidr")
    subnet.add_argument("--hosts", type=_non_negative_int)
    lifecycle = calculator("lifecycle", calc_lifecycle, "check one S3 lifecycle rule against S3's minimums")
    lifecycle.add_argument("--transition", action="append", default=[], metavar="CLASS:DAYS")
    lifecycle.add_argument("--expire", type=_non_negative_int, metavar="DAYS")
    sqs = calculator("sqs", calc_sqs, "the minimum SQS visibility timeout for a Lambda consumer")
    sqs.add_argument("--lambda-timeout", type=_non_negative_int, required=True, metavar="SECONDS")

    cost = commands.add_parser("cost", help="monthly and idle-per-day cost of a deployment, line by line",
                               description="Monthly cost of Selfnest (from its synthesized templates) or BabyBloom "
                                           "(--azure, from its offline plan), with the price sheets in pricing/.")
    cost.add_argument("--env", help="Selfnest environment: a file name in config/ (default dev)")
    cost.add_argument("--dr-tier", help="override the config's dr.tier (backup_restore, pilot_light, warm_standby)")
    cost.add_argument("--azure", action="store_true", help="BabyBloom on Azure instead of Selfnest")
    cost.add_argument("--stack", help="BabyBloom stack with --azure: reads Pulumi.<stack>.yaml (default dev)")
    cost.add_argument("--json", action="store_true", help="print one JSON object")
    cost.set_defaults(handler=show_cost)

    lab = commands.add_parser("lab", help="grade one lab (docs/labs/)")
    lab.add_argument("number", help="the lab's number, e.g. 01")
    lab.add_argument("--json", action="store_true", help="print the checks as one JSON list")
    lab.add_argument("--local", action="store_true",
                     help="also check the running local deployment (`make up`); without it, labs that can are "
                          "checked there whenever one is running (not with --json)")
    lab.add_argument("--state", type=Path, help="where `make up` keeps its state (default: .local)")
    lab.set_defaults(handler=run_lab)
    commands.add_parser("labs", help="list the labs").set_defaults(handler=list_labs)
    quiz = commands.add_parser("quiz", help="exam-style questions about the labs' decisions, shuffled and scored")
    quiz.add_argument("lab", nargs="?", help="only this lab's questions, e.g. 07 (default: every lab)")
    quiz.add_argument("--json", action="store_true", help="print the (shuffled) questions with answers as JSON")
    quiz.add_argument("--seed", type=int, help="shuffle reproducibly")
    quiz.set_defaults(handler=run_quiz)
    show = commands.add_parser("show", help="a synthesized Selfnest stack in readable form: subnets, routes, "
                                            "security rules, NACLs, tables and capacity, queues, buckets")
    show.add_argument("part", help="network, data, identity, messaging, chat, web, backup or dr")
    show.add_argument("--env", default="dev", help="config/<env>.yaml (default dev)")
    show.add_argument("--dr-tier", help="override config's dr.tier")
    show.set_defaults(handler=run_show)
    return parser


def checkout_mismatch(cwd: Path) -> str | None:
    """When run inside a refarch checkout other than the one installed (a copied, moved or renamed checkout whose
    .venv still points at the old path), what to do about it; None when they agree or cwd is no checkout."""
    installed = Path(__file__).resolve().parents[1]
    for folder in (cwd, *cwd.parents):
        marker = folder / "pyproject.toml"
        if marker.is_file() and 'name = "refarch"' in marker.read_text(encoding="utf-8"):
            if folder.resolve() == installed:
                return None
            return (f"this refarch is installed from {installed}, not from this checkout ({folder}): run "
                    f"`make bootstrap` here to reinstall it (the old path would be graded and synthesized)")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    mismatch = checkout_mismatch(Path.cwd())
    if mismatch:
        print(f"refarch: error: {mismatch}", file=sys.stderr)
        return USAGE_ERROR
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (ValueError, PricingError) as error:
        print(f"refarch: error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
