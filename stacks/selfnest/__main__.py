"""`cdk synth -c env=<env> [-c dr_tier=<tier>]` runs this: load config/<env>.yaml once, build it, synthesize."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from .app import build_app
from .config import ConfigError, load_settings


def main(cli_context: dict[str, object] | None = None) -> int:
    """`cli_context` stands in for the CLI's `-c` options (CDK_CONTEXT_JSON) when called in-process."""
    context = cdk.App(context=cli_context).node
    environment = str(context.try_get_context("env") or "dev")
    dr_tier = context.try_get_context("dr_tier")   # `-c dr_tier=pilot_light` overrides config's dr.tier
    try:
        settings = load_settings(environment, dr_tier=None if dr_tier is None else str(dr_tier))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # The CLI sets the caller's account (with credentials); without it, every stack is account-agnostic.
    app, _ = build_app(settings, account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
