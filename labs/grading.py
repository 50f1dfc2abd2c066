"""What every lab grader shares: checks with teaching hints, the report, and offline builds of what deploys.

A grader reads the configuration through the project's own loaders and builds only what it needs — one CDK stack
(no cdk-nag: `make test` runs the compliance gates), the whole Selfnest environment, or BabyBloom's offline Pulumi
plan — then inspects the result the way a reviewer would. Nothing is sent to AWS or Azure.
"""

from __future__ import annotations

import inspect
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[1]
Template = dict[str, Any]
Resource = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Check:
    """One requirement of a lab: what is asked, whether it holds, and the concept to revisit if it does not."""

    name: str
    passed: bool
    hint: str
    found: str = ""   # what the grader saw, shown under a FAIL ("found 2 NAT gateways")


class Grader(Protocol):
    def __call__(self, root: Path) -> list[Check]: ...


@dataclass(frozen=True, kw_only=True)
class Lab:
    """One lab. `grade(root)` reads the project at `root` (config, Pulumi stack files); the code it builds is the
    imported `refarch` package, so a lab whose answer is code is graded in a process that imports the answer's tree."""

    number: str
    slug: str
    title: str
    exam: str
    grade: Grader

    @property
    def directory(self) -> Path:
        return ROOT / "labs" / f"{self.number}-{self.slug}"

    @property
    def solution(self) -> Path:
        return self.directory / "solution" / "solution.patch"


def check(name: str, passed: bool, hint: str, *, found: object = "") -> Check:
    return Check(name=name, passed=bool(passed), hint=hint, found=str(found))


CONFIG_CHECK = "the configuration loads"
# Raised for a learner's configuration mistake by the Selfnest loader, the BabyBloom loader and the Pulumi program
# (by name: importing Pulumi here would slow every AWS lab).
CONFIG_ERRORS = frozenset({"refarch.stacks.selfnest.config.ConfigError", "refarch.stacks.babybloom.config.ConfigError",
                           "pulumi.errors.RunError"})


def grade(lab: Lab, root: Path = ROOT) -> list[Check]:
    """The lab's checks; a configuration mistake is one failing check whose hint is the loader's one-line message
    (what `make synth` prints), never a traceback."""
    try:
        return lab.grade(root)
    except Exception as error:
        if f"{type(error).__module__}.{type(error).__qualname__}" not in CONFIG_ERRORS:
            raise
        message = str(error).strip() or type(error).__name__
        return [check(CONFIG_CHECK, False, message.splitlines()[0], found="the loader refused it; nothing was built")]


def report(lab: Lab, checks: list[Check], seconds: float, *, heading: str = "") -> int:
    """Print PASS/FAIL per check (under each failure what was found and a hint); 0 when every check passes."""
    print(f"Lab {lab.number}: {lab.title}" + (f" — {heading}" if heading else ""))
    for result in checks:
        print(f"  {'PASS' if result.passed else 'FAIL'}  {result.name}")
        if not result.passed:
            if result.found:
                print(f"        found: {result.found}")
            print(f"        hint: {result.hint}")
    passed = sum(result.passed for result in checks)
    verdict = "lab complete" if passed == len(checks) else "not yet: fix the FAILs above and run it again"
    print(f"{passed}/{len(checks)} checks pass in {seconds:.1f}s — {verdict}")
    return 0 if passed == len(checks) else 1


def run(lab: Lab, root: Path = ROOT) -> int:
    started = time.perf_counter()
    checks = grade(lab, root)
    return report(lab, checks, time.perf_counter() - started)


class StackType(Protocol):
    def __call__(self, scope: Any, id: str, *, settings: Any, **kwargs: Any) -> Any: ...


def _cdk_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    context["aws:cdk:enable-path-metadata"] = True   # lets graders find resources by construct path
    # No asset bundling (pip into each Lambda asset): graders read templates, never asset contents — seconds saved.
    context["aws:cdk:bundling-stacks"] = []
    return context


def synth_stack(settings: Any, stack_type: StackType, part: str, *, region: str | None = None) -> Template:
    """Synthesize one stack of an environment on its own (for stacks that take only settings): seconds, not tens."""
    import aws_cdk as cdk

    with tempfile.TemporaryDirectory(prefix="refarch-lab-") as outdir:
        app = cdk.App(outdir=outdir, context=_cdk_context())
        stack_type(app, part, settings=settings, stack_name=settings.name(part),
                   env=cdk.Environment(region=region or settings.region))
        template: Template = app.synth().get_stack_by_name(settings.name(part)).template
    return template


# What each stack is handed besides settings, as SelfnestEnvironment (stacks/selfnest/app.py) wires them.
def handed_parts(types: dict[str, Any], part: str, settings: Any) -> tuple[str, ...]:
    """The other stacks a part's constructor takes (read from its signature, so it follows the stacks' own wiring).
    The dr stack's are optional: only a warm standby's API is handed the primary region's stacks."""
    parameters = inspect.signature(types[part].__init__).parameters
    handed = tuple(name for name in parameters if name in types and name != part)
    if part == "dr" and settings.dr.standby_region is None:
        return ()
    return handed


def stack_types() -> dict[str, Any]:
    from refarch.stacks.selfnest.backup import BackupStack
    from refarch.stacks.selfnest.chat import ChatStack
    from refarch.stacks.selfnest.data import DataStack
    from refarch.stacks.selfnest.dr import DisasterRecoveryStack
    from refarch.stacks.selfnest.identity import IdentityStack
    from refarch.stacks.selfnest.messaging import MessagingStack
    from refarch.stacks.selfnest.network import NetworkStack
    from refarch.stacks.selfnest.web import WebStack

    return {"network": NetworkStack, "data": DataStack, "identity": IdentityStack, "messaging": MessagingStack,
            "chat": ChatStack, "web": WebStack, "backup": BackupStack, "dr": DisasterRecoveryStack}


def synth_parts(settings: Any, parts: Iterable[str]) -> dict[str, Template]:
    """Only the named stacks and the stacks they are handed (not the whole environment), by part."""
    import aws_cdk as cdk

    types = stack_types()
    wanted = list(parts)
    unknown = [part for part in wanted if part not in types]
    if unknown:
        raise ValueError(f"no stack part {', '.join(unknown)} (parts: {', '.join(types)})")
    if "dr" in wanted and settings.dr.copy_region is None:
        raise ValueError(f"{settings.environment} has no DR region (dr.region), so no dr stack")
    with tempfile.TemporaryDirectory(prefix="refarch-lab-") as outdir:
        app = cdk.App(outdir=outdir, context=_cdk_context())
        built: dict[str, Any] = {}

        def make(part: str) -> Any:
            if part not in built:
                handed = {need: make(need) for need in handed_parts(types, part, settings)}
                region = settings.dr.copy_region if part == "dr" else settings.region
                built[part] = types[part](app, part, settings=settings, stack_name=settings.name(part),
                                          env=cdk.Environment(region=region), **handed)
            return built[part]

        for part in wanted:
            make(part)
        assembly = app.synth()
        return {stack.stack_name.removeprefix(settings.name("")): stack.template for stack in assembly.stacks}


def synth_environment(settings: Any) -> dict[str, Template]:
    """Every stack of the environment, by part (network, data, web, ...), as `cdk synth` builds them."""
    import aws_cdk as cdk
    from refarch.stacks.selfnest.app import SelfnestEnvironment

    with tempfile.TemporaryDirectory(prefix="refarch-lab-") as outdir:
        app = cdk.App(outdir=outdir, context=_cdk_context())
        SelfnestEnvironment(app, settings=settings)
        assembly = app.synth()
        return {stack.stack_name.removeprefix(settings.name("")): stack.template for stack in assembly.stacks}


def resources(template: Template, resource_type: str) -> dict[str, Resource]:
    return {logical_id: resource for logical_id, resource in template["Resources"].items()
            if resource["Type"] == resource_type}


def at_path(template: Template, path_suffix: str) -> Iterator[tuple[str, Resource]]:
    """Resources whose construct path ends with `path_suffix` (e.g. "Inbox/Table/Resource")."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix):
            yield logical_id, resource
