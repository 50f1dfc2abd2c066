"""The CrossGuard policies built from policies/rules.py; __main__.py serves them to the Pulumi CLI."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .rules import RULES, Rule

PACK_NAME = "babybloom-azure"


def _validator(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if rule.applies_to(args.resource_type):
            message = rule.check(args.props)
            if message is not None:
                report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def policies() -> list[Policy]:
    return [_validator(rule) for rule in RULES]
