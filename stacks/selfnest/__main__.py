"""`cdk synth -c env=<env>` runs this: load config/<env>.yaml once, build that environment, synthesize."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from .app import build_app
from .config import ConfigError, load_settings


def main() -> int:
    environment = str(cdk.App().node.try_get_context("env") or "dev")
    try:
        settings = load_settings(environment)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    app, _ = build_app(settings)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
