"""Lab 15 — DR beyond pilot light: prod from backup and restore to warm standby, with Route 53 failover alias
records behind a health check of the primary, and the recovery objectives the tier gives.

Graded on the synthesized web stack (primary region) and DR stack (DR region) and on the learner's RPO/RTO answers
(labs/15-dr-warm-standby/objectives.yaml). Any health-check timing that notices an outage within the budget without
failing over on one lost probe passes; the objectives are judged against the tier's bounds in constructs/aws/dr.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from refarch.constructs.aws.dr import TIER_OBJECTIVES
from refarch.constructs.aws.web import HEALTH_CHECK_PATH
from refarch.stacks.selfnest.config import load_settings

from .grading import Check, Template, check, resources, synth_parts

OBJECTIVES = Path("labs") / "15-dr-warm-standby" / "objectives.yaml"
TIER = "warm_standby"
# The business asks that clients be on their way to the standby within a minute of an outage.
DETECTION_BUDGET_SECONDS = 60
# Alias records to a load balancer carry its TTL of 60 s: resolvers may keep the old answer that long.
ALIAS_TTL_SECONDS = 60


def _answers(root: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load((root / OBJECTIVES).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _minutes(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _records(template: Template, role: str) -> list[dict[str, Any]]:
    return [record["Properties"] for record in resources(template, "AWS::Route53::RecordSet").values()
            if record["Properties"].get("Failover") == role]


def _targets_own_balancer(record: dict[str, Any], template: Template) -> bool:
    balancers = resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    zone = record.get("AliasTarget", {}).get("HostedZoneId", {})
    return isinstance(zone, dict) and zone.get("Fn::GetAtt", [""])[0] in balancers


def grade(root: Path) -> list[Check]:
    settings = load_settings("prod", root / "config")
    dr, tier = settings.dr, settings.dr.tier
    parts = ["web", "dr"] if dr.copy_region is not None else ["web"]
    templates = synth_parts(settings, parts)
    web, standby = templates["web"], templates.get("dr", {"Resources": {}})
    services = [service["Properties"] for service in resources(standby, "AWS::ECS::Service").values()]
    balancers = resources(standby, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    primaries, secondaries = _records(web, "PRIMARY"), _records(standby, "SECONDARY")
    primary = primaries[0] if len(primaries) == 1 else {}
    secondary = secondaries[0] if len(secondaries) == 1 else {}
    health_checks = resources(web, "AWS::Route53::HealthCheck")
    check_id = primary.get("HealthCheckId", {}).get("Ref") if isinstance(primary.get("HealthCheckId"), dict) else None
    probe = health_checks.get(check_id or "", {}).get("Properties", {}).get("HealthCheckConfig", {})
    interval, threshold = probe.get("RequestInterval", 30), probe.get("FailureThreshold", 3)
    detection = interval * threshold if probe else None
    https = settings.web.certificate_arn is not None
    bounds = TIER_OBJECTIVES[TIER]
    answers = _answers(root)
    rpo, rto = _minutes(answers.get("rpo_minutes")), _minutes(answers.get("rto_minutes"))
    fastest_rto = ((detection or 0) + ALIAS_TTL_SECONDS) / 60
    shown_records = (f"{len(primaries)} PRIMARY record(s) in {settings.region}, {len(secondaries)} SECONDARY in "
                     f"{dr.copy_region or 'no DR region'}")
    return [
        check(f"prod's DR tier is {TIER}", tier == TIER,
              "set dr.tier in config/prod.yaml. Pilot light keeps only the data live in the DR region; warm standby "
              "also runs a scaled-down but working copy of the app there, so failover is a DNS change and a "
              "scale-out, not a deployment (whitepaper: Disaster Recovery of Workloads on AWS).",
              found=f"dr.tier {tier}"),
        check("a scaled-down copy of the API runs in the DR region (at least 1 task behind its own load balancer)",
              bool(services) and all(service.get("DesiredCount", 0) >= 1 for service in services) and bool(balancers),
              "warm standby is scaled-down, not switched off: at least one task serves behind the DR region's own "
              "load balancer, so the standby is tested all the time and only needs to scale out (dr.standby_tasks).",
              found=f"{len(services)} services (desired {[service.get('DesiredCount') for service in services]}), "
                    f"{len(balancers)} load balancers in {dr.copy_region}"),
        check("a PRIMARY failover alias record points at the primary region's load balancer, with a health check",
              bool(primary) and _targets_own_balancer(primary, web) and check_id in health_checks,
              "failover routing answers with the PRIMARY record while its health check is healthy; the record is an "
              "alias to the primary's load balancer (no charge for alias queries to AWS resources).",
              found=shown_records + (f"; health check {check_id}" if check_id else "; no health check")),
        check("a SECONDARY record of the same name points at the DR region's load balancer",
              bool(secondary) and bool(primary) and _targets_own_balancer(secondary, standby)
              and secondary.get("Name") == primary.get("Name")
              and secondary.get("HostedZoneId") == primary.get("HostedZoneId"),
              "Route 53 answers with the SECONDARY record of the same name and type when the PRIMARY is unhealthy; "
              "it must target the standby's load balancer in the DR region.", found=shown_records),
        check("both alias records evaluate target health",
              bool(primary) and bool(secondary) and all(record.get("AliasTarget", {}).get("EvaluateTargetHealth")
                                                        is True for record in (primary, secondary)),
              "with evaluate target health an alias record to a load balancer is unhealthy when the load balancer "
              "has no healthy targets, so a standby with no running task is never chosen, and a primary whose "
              "tasks all fail is left even before its health check notices.",
              found=[record.get("AliasTarget", {}).get("EvaluateTargetHealth") for record in (primary, secondary)
                     if record]),
        check(f"the health check probes the API's {HEALTH_CHECK_PATH} over what the listener serves",
              bool(probe) and probe.get("ResourcePath") == HEALTH_CHECK_PATH
              and (probe.get("Type"), probe.get("Port")) == (("HTTPS", 443) if https else ("HTTP", 80)),
              "Route 53 counts any 2xx or 3xx answer as healthy: with HTTPS configured, port 80 only redirects, so an "
              "HTTP check would stay healthy while the API is down. Probe HTTPS on 443 (the load balancer's own DNS "
              "name, without SNI: the load balancer answers with its default certificate).",
              found=f"{probe.get('Type')} port {probe.get('Port')} path {probe.get('ResourcePath')}" if probe
              else "no health check"),
        check(f"Route 53 calls the primary unhealthy within {DETECTION_BUDGET_SECONDS} s, and not on one lost probe",
              detection is not None and detection <= DETECTION_BUDGET_SECONDS and threshold >= 2,
              "detection time = request interval (10 s fast or 30 s standard) x failure threshold (consecutive "
              "failed probes): dr.failover.health_check_interval_seconds and failure_threshold. A threshold of 1 "
              "fails the whole region over on a single lost probe.",
              found=f"{interval} s x {threshold} = {detection} s" if detection is not None else "no health check"),
        check(f"your RPO answer: more than 0 and at most {bounds.rpo_minutes:g} minutes",
              rpo is not None and 0 < rpo <= bounds.rpo_minutes,
              "the RDS cross-region read replica and DynamoDB global tables replicate asynchronously: what was "
              "committed in the primary and not yet shipped is lost, so the RPO is the replication lag (seconds, "
              "never zero). Write it in labs/15-dr-warm-standby/objectives.yaml (rpo_minutes).",
              found=f"rpo_minutes {answers.get('rpo_minutes')!r}"),
        check(f"your RTO answer: at least detection plus the alias TTL, at most {bounds.rto_minutes:g} minutes",
              rto is not None and fastest_rto <= rto <= bounds.rto_minutes,
              "recovery time = Route 53 detection (interval x threshold) + the 60 s alias TTL + promoting the replica "
              "to accept writes (minutes) + auto scaling from dr.standby_tasks; warm standby keeps it within "
              f"{bounds.rto_minutes:g} minutes. Write it in labs/15-dr-warm-standby/objectives.yaml (rto_minutes).",
              found=f"rto_minutes {answers.get('rto_minutes')!r} (detection + TTL = {fastest_rto:g} min)"),
    ]
