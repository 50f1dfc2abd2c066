"""Every lab by number: `refarch lab NN` / `make lab LAB=NN` grades one."""

from __future__ import annotations

import sys

from . import (
    lab01_subnets,
    lab02_nacl,
    lab03_placement,
    lab04_cognito,
    lab05_fanout,
    lab06_lifecycle,
    lab07_dynamodb,
    lab08_dr,
    lab09_cosmos,
    lab10_identity_connections,
    lab11_replication,
    lab12_keyvault_insights,
    lab13_access_patterns,
)
from .grading import Lab, run

LABS: dict[str, Lab] = {module.LAB.number: module.LAB for module in (
    lab01_subnets, lab02_nacl, lab03_placement, lab04_cognito, lab05_fanout, lab06_lifecycle, lab07_dynamodb,
    lab08_dr, lab09_cosmos, lab10_identity_connections, lab11_replication,
    lab12_keyvault_insights, lab13_access_patterns)}


def lab_by_number(number: str) -> Lab:
    lab = LABS.get(number.zfill(2))
    if lab is None:
        raise ValueError(f"there is no lab {number!r} (labs: {', '.join(LABS)}; see docs/labs/)")
    return lab


def grade(number: str) -> int:
    return run(lab_by_number(number))


if __name__ == "__main__":
    sys.exit(grade(sys.argv[1]) if len(sys.argv) == 2 else 2)
