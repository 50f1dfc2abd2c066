"""Every lab by number: `refarch lab NN` / `make lab LAB=NN` grades one.

The catalog holds each lab's description; its grader module (labs/labNN_*.py) is imported only when that lab is
graded, so listing labs or asking quiz questions builds nothing, and an Azure lab never loads the CDK.
"""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path

from .grading import Check, Grader, Lab, run


def _grader(module: str) -> Grader:
    def grade(root: Path) -> list[Check]:
        graded: list[Check] = import_module(f"{__package__}.{module}").grade(root)
        return graded
    return grade


def _lab(*, number: str, slug: str, title: str, exam: str, module: str) -> Lab:
    return Lab(number=number, slug=slug, title=title, exam=exam, grade=_grader(module))


LABS: dict[str, Lab] = {lab.number: lab for lab in (
    _lab(number="01", slug="vpc-subnets", title="VPC CIDR and subnet sizing",
         exam="SAA-C03 Domain 2: Design Resilient Architectures; Domain 3: Design High-Performing Architectures",
         module="lab01_subnets"),
    _lab(number="02", slug="security-groups-vs-nacls",
         title="Security groups vs NACLs: stateless rules, ephemeral ports",
         exam="SAA-C03 Domain 1: Design Secure Architectures", module="lab02_nacl"),
    _lab(number="03", slug="web-tier-placement", title="Public web tier, private app and database placement",
         exam="SAA-C03 Domain 1: Design Secure Architectures; Domain 4: Design Cost-Optimized Architectures",
         module="lab03_placement"),
    _lab(number="04", slug="cognito-groups-mfa", title="Cognito groups and MFA",
         exam="SAA-C03 Domain 1: Design Secure Architectures; DVA-C02 Domain 2: Security", module="lab04_cognito"),
    _lab(number="05", slug="sns-sqs-fanout", title="SNS to SQS fan-out, DLQ and visibility timeout",
         exam="DVA-C02 Domain 1: Development with AWS Services; SAA-C03 Domain 2: Design Resilient Architectures",
         module="lab05_fanout"),
    _lab(number="06", slug="s3-lifecycle-gfs",
         title="S3 versioning, lifecycle and GFS retention with minimum durations",
         exam="SAA-C03 Domain 4: Design Cost-Optimized Architectures; Domain 2: Design Resilient Architectures",
         module="lab06_lifecycle"),
    _lab(number="07", slug="dynamodb-capacity", title="DynamoDB capacity: on-demand vs provisioned (RCU/WCU)",
         exam="DVA-C02 Domain 4: Troubleshooting and Optimization; SAA-C03 Domain 3: Design High-Performing "
              "Architectures", module="lab07_dynamodb"),
    _lab(number="08", slug="dr-pilot-light", title="Disaster recovery: backup and restore to pilot light",
         exam="SAA-C03 Domain 2: Design Resilient Architectures", module="lab08_dr"),
    _lab(number="09", slug="cosmos-partitioning", title="Cosmos DB partition keys, consistency and request units",
         exam="AZ-204: Develop for Azure storage (Cosmos DB)", module="lab09_cosmos"),
    _lab(number="10", slug="functions-identity-connections", title="Functions identity-based connections (no keys)",
         exam="AZ-204: Implement Azure security; Connect to and consume Azure services",
         module="lab10_identity_connections"),
    _lab(number="11", slug="s3-cross-region-replication", title="S3 versioning and cross-region replication",
         exam="DVA-C02 Domain 1: Development with AWS Services; SAA-C03 Domain 2: Design Resilient Architectures",
         module="lab11_replication"),
    _lab(number="12", slug="keyvault-references-insights", title="Key Vault references and Application Insights "
         "with Entra ID (no keys)", exam="AZ-204: Implement Azure security; Monitor and troubleshoot Azure solutions",
         module="lab12_keyvault_insights"),
    _lab(number="13", slug="dynamodb-access-patterns", title="DynamoDB access patterns: a GSI for a chat query",
         exam="DVA-C02 Domain 1: Development with AWS Services; Domain 4: Troubleshooting and Optimization",
         module="lab13_access_patterns"),
    _lab(number="14", slug="cdk-update-safety", title="Change sets and update safety: refactor without replacing "
         "a table", exam="DVA-C02 Domain 3: Deployment; Domain 4: Troubleshooting and Optimization",
         module="lab14_update_safety"),
    _lab(number="15", slug="dr-warm-standby",
         title="DR beyond pilot light: warm standby with Route 53 health-checked failover",
         exam="SAA-C03 Domain 2: Design Resilient Architectures", module="lab15_warm_standby"),
)}


def lab_by_number(number: str) -> Lab:
    lab = LABS.get(number.zfill(2))
    if lab is None:
        raise ValueError(f"there is no lab {number!r} (labs: {', '.join(LABS)}; see docs/labs/)")
    return lab


def grade(number: str) -> int:
    return run(lab_by_number(number))


if __name__ == "__main__":
    sys.exit(grade(sys.argv[1]) if len(sys.argv) == 2 else 2)
