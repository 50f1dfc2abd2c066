"""Lab 08 — disaster recovery: prod from backup-and-restore to pilot light (a live replica in the DR region)."""

from __future__ import annotations

from pathlib import Path

from refarch.stacks.selfnest.config import load_settings
from refarch.stacks.selfnest.dr import DisasterRecoveryStack

from .grading import Check, check, resources, synth_stack


def grade(root: Path) -> list[Check]:
    settings = load_settings("prod", root / "config")
    dr = settings.dr
    region = dr.copy_region or settings.region
    template = synth_stack(settings, DisasterRecoveryStack, "dr", region=region)
    replicas = [instance["Properties"] for instance in resources(template, "AWS::RDS::DBInstance").values()
                if "SourceDBInstanceIdentifier" in instance["Properties"]]
    subnets = [subnet["Properties"] for subnet in resources(template, "AWS::EC2::Subnet").values()]
    return [
        check("prod's DR tier is pilot_light", dr.tier == "pilot_light",
              "set dr.tier in config/prod.yaml. Backup and restore: RPO/RTO in hours (redeploy, restore). Pilot "
              "light: data already live in the DR region, RTO tens of minutes (whitepaper: Disaster Recovery of "
              "Workloads on AWS).", found=f"dr.tier {dr.tier}"),
        check("the DR region differs from the primary", region != settings.region,
              "a regional disaster takes every zone of the region with it.",
              found=f"primary {settings.region}, DR {region}"),
        check("an RDS cross-region read replica of the primary runs in the DR region",
              len(replicas) == 1 and "arn:aws:rds:" in str(replicas[0]["SourceDBInstanceIdentifier"]),
              "pilot light keeps the data tier live (asynchronous replication, RPO seconds to minutes); app servers "
              "are not deployed until failover.", found=f"{len(replicas)} read replicas in {region}"),
        check("the replica is encrypted with a key of the DR region",
              bool(replicas) and replicas[0].get("KmsKeyId", {}).get("Fn::GetAtt", [""])[0]
              in resources(template, "AWS::KMS::Key"),
              "KMS keys are regional: a cross-region replica of an encrypted database needs a key of its own region "
              "(KmsKeyId); the replica is encrypted because its source is.",
              found=f"KmsKeyId {replicas[0].get('KmsKeyId') if replicas else None}"),
        check("the replica sits in isolated subnets (no route out)",
              bool(subnets) and not resources(template, "AWS::EC2::NatGateway")
              and not resources(template, "AWS::EC2::InternetGateway"),
              "nothing runs in the DR VPC until failover; it needs no internet path.",
              found=f"{len(subnets)} subnets, {len(resources(template, 'AWS::EC2::NatGateway'))} NAT gateways, "
                    f"{len(resources(template, 'AWS::EC2::InternetGateway'))} internet gateways"),
    ]

