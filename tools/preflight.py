"""`make deploy`'s first step: refuse, in one line per value, a config that still holds documentation placeholders.

The stacks refuse them too (a CloudFormation rule in each template), so a direct `cdk deploy` stops as well; this
check answers before any bundling or AWS call.
"""

from __future__ import annotations

import argparse
import sys

from refarch.stacks.selfnest.config import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="dev", help="environment: a file name in config/ (default dev)")
    parser.add_argument("--dr-tier", default=None,
                        help="override config's dr.tier (backup_restore, pilot_light, warm_standby)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env, dr_tier=args.dr_tier or None)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    placeholders = settings.placeholders()
    for placeholder in placeholders:
        print(f"error: {placeholder}", file=sys.stderr)
    return 2 if placeholders else 0


if __name__ == "__main__":
    sys.exit(main())
