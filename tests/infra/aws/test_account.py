"""Account-wide settings have one owner: the selfnest-account stack, the same whichever environment deploys it."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from refarch.stacks.selfnest.account import ACCOUNT_STACK_NAME
from refarch.tools.synth import summarize

from .assembly import Assembly

ROOT = Path(__file__).resolve().parents[3]


def test_only_the_account_stack_sets_api_gateways_cloudwatch_role(assembly: Assembly) -> None:
    owners = {part for part, _, _ in assembly.all_resources("AWS::ApiGateway::Account")}
    assert owners == {ACCOUNT_STACK_NAME}
    [(_, setting)] = assembly.resources(ACCOUNT_STACK_NAME, "AWS::ApiGateway::Account").items()
    role_id = setting["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = assembly.resources(ACCOUNT_STACK_NAME, "AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}


def test_every_environment_synthesizes_the_same_account_stack(dev: Assembly, prod: Assembly) -> None:
    """dev and prod deploy one stack in a shared account and region: any difference would flip it back and forth.
    Only the deploy refusal differs while an environment's config holds placeholders (then nothing deploys)."""
    assert dev.regions[ACCOUNT_STACK_NAME] == prod.regions[ACCOUNT_STACK_NAME]

    def deployed(template: dict[str, object]) -> dict[str, object]:
        return {section: body for section, body in template.items() if section != "Rules"}

    assert deployed(dev.templates[ACCOUNT_STACK_NAME]) == deployed(prod.templates[ACCOUNT_STACK_NAME])


def test_the_account_stack_is_termination_protected_and_deployed_before_the_chat(assembly: Assembly) -> None:
    assert assembly.artifacts[ACCOUNT_STACK_NAME]["properties"]["terminationProtection"] is True
    assert ACCOUNT_STACK_NAME in assembly.dependencies("chat")


def test_make_destroy_removes_this_environments_stacks_and_never_the_account_stack(assembly: Assembly) -> None:
    recipe = re.search(r"^destroy:.*\n\t(.+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert recipe is not None and "--all" not in recipe.group(1)
    [pattern] = re.findall(r"'([^']+)'", recipe.group(1))
    pattern = pattern.replace("$(ENV)", assembly.settings.environment)
    chosen = {part for part, artifact in assembly.artifacts.items()
              if fnmatch.fnmatchcase(artifact["displayName"], pattern)}
    assert chosen == set(assembly.artifacts) - {ACCOUNT_STACK_NAME}


def test_the_synth_summary_names_every_stack_including_the_account_stack(assembly: Assembly) -> None:
    """`make synth` prints one line per stack; a stack under the app itself has no stackName in the manifest."""
    names = {summary.name for summary in summarize(assembly.outdir)}
    assert names == {assembly.settings.name(part) for part in assembly.templates if part != ACCOUNT_STACK_NAME} | {
        ACCOUNT_STACK_NAME}
