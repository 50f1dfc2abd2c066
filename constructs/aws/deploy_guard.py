"""Stop a deploy, not a synth: template rules that make CloudFormation refuse to create or update a stack."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk

NEVER_A_REGION = "refused: config holds placeholders"


def refuse_deploy(stack: cdk.Stack, reasons: Sequence[str]) -> None:
    """While `reasons` remain, CloudFormation validates the template's rules before it touches a resource and
    stops `cdk deploy` of `stack` (create, update or change set) with the reason as its message.

    The app cannot tell `cdk synth` from `cdk deploy` (the CLI runs it the same way for both), so the refusal lives
    in the template: offline synth, tests and linters see a rule, only CloudFormation acts on it.
    """
    for index, reason in enumerate(reasons):
        cdk.CfnRule(stack, f"RefuseDeploy{index}", assertions=[cdk.CfnRuleAssertion(
            # Always false (no region has that name): a deploy is refused until config no longer produces the rule.
            # It compares a pseudo parameter, as AWS's rule examples do, rather than two literals.
            assert_=cdk.Fn.condition_equals(cdk.Aws.REGION, NEVER_A_REGION), assert_description=reason)])
