"""Lab 14 — Change sets and update safety: a requested refactor (the chat's messages table's construct is renamed
`History`) deployed over a running stack without replacing the table.

What CloudFormation would do is judged the way a change set does, against what is deployed: the lab's recorded
deployment of dev's chat stack (`deployed/chat.json`, its stateful resources as the untouched repository synthesizes
them) is compared with the learner's synthesis by refarch.tools.update_safety, the checker the update tests use. Any
way of keeping the table's logical ID passes (override_logical_id, Stack.rename_logical_id, ...); a renamed construct
that moves the table to a new logical ID, a changed create-only property or a deleted data store fails, named.

Maintainers: when a deliberate change to the chat stack's stateful resources lands, re-record what "deployed" means
with `python -m refarch.labs.lab14_update_safety --record` (the lab's untouched-repository test says when).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.config import load_settings
from refarch.tools.update_safety import STATEFUL_TYPES, update_problems

from .grading import ROOT, Check, Template, check, synth_parts

ENVIRONMENT, PART = "dev", "chat"
RENAMED_TO = "History"   # the construct ID the team asked for
MESSAGES_SUFFIX = "-messages"
DEPLOYED = Path("labs") / "14-cdk-update-safety" / "deployed" / f"{PART}.json"


def stateful_resources(template: Template) -> Template:
    """What a deployment must not lose: the stateful resources, as CloudFormation holds them (the rest of the
    template is irrelevant to replacement and would only make the recording churn)."""
    kept = {logical_id: {key: value for key, value in resource.items() if key != "Metadata"}
            for logical_id, resource in template["Resources"].items() if resource["Type"] in STATEFUL_TYPES}
    return {"Resources": dict(sorted(kept.items()))}


def _synthesized(root: Path) -> tuple[Template, str]:
    settings = load_settings(ENVIRONMENT, root / "config")
    return synth_parts(settings, [PART])[PART], settings.region


def _messages_table(template: Template) -> tuple[str, dict[str, Any]] | None:
    for logical_id, resource in template["Resources"].items():
        if (resource["Type"].startswith("AWS::DynamoDB::")
                and str(resource.get("Properties", {}).get("TableName", "")).endswith(MESSAGES_SUFFIX)):
            return logical_id, resource
    return None


def grade(root: Path) -> list[Check]:
    deployed: Template = json.loads((root / DEPLOYED).read_text(encoding="utf-8"))
    template, region = _synthesized(root)
    table = _messages_table(template)
    path = table[1].get("Metadata", {}).get("aws:cdk:path", "") if table else ""
    was = _messages_table(deployed)
    problems = update_problems({PART: deployed}, {PART: template}, regions={PART: region}, retain_data=True)
    table_problems = [problem for problem in problems if was and f"/{was[0]} " in problem]
    return [
        check(f"the messages table's construct is named {RENAMED_TO} (the requested refactor)",
              f"/{RENAMED_TO}/" in path,
              f"rename the construct ID `Messages` to `{RENAMED_TO}` in ChatTables (constructs/aws/chat.py): the "
              "refactor the team asked for, the change whose deployment this lab is about.",
              found=path or "no table named *-messages in the chat stack"),
        check("the deployed messages table stays the same resource (its logical ID is kept)",
              bool(was) and not table_problems,
              "CloudFormation knows a resource by its logical ID, and CDK derives the ID from the construct path: a "
              "renamed construct is a new resource, so the change set adds a table and removes the deployed one "
              "(with a custom TableName the update even fails: the name is taken). Keep the deployed logical ID "
              "(override_logical_id on the table's L1 resource, or Stack.rename_logical_id) and read "
              "`cdk diff` before deploying.",
              found="; ".join(table_problems) or f"kept as {was[0] if was else '?'}"),
        check(f"no stateful resource of the deployed {PART} stack is replaced or deleted",
              not problems,
              "a change set replaces a resource whose logical ID moves, whose type changes or whose create-only "
              "property changes (the docs mark them 'Update requires: Replacement'; TableName and KeySchema are "
              "such properties of a table), and deletes what leaves the template: each loses the data in it.",
              found="; ".join(problems) or "none"),
    ]


def record(root: Path = ROOT) -> Path:
    """Write the stateful resources of the untouched chat stack as the lab's recorded deployment."""
    template, _ = _synthesized(root)
    target = root / DEPLOYED
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(stateful_resources(template), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python -m refarch.labs.lab14_update_safety --record  (maintainers: re-record the deployment)")
    print(f"recorded {record().relative_to(ROOT)}")
