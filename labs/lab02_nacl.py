"""Lab 02 — security groups vs NACLs: explicit, lower-numbered denies for the public tier on the data subnets."""

from __future__ import annotations

from typing import Any

from refarch.stacks.selfnest.config import load_settings, subnet_cidrs
from refarch.stacks.selfnest.network import NetworkStack

from .grading import Check, Lab, check, resources, synth_stack

POSTGRES = 5432
EPHEMERAL = (1024, 65535)
ALL_PROTOCOLS = -1


def _entries(template: dict[str, Any], *, egress: bool) -> list[dict[str, Any]]:
    return [entry["Properties"] for entry in resources(template, "AWS::EC2::NetworkAclEntry").values()
            if bool(entry["Properties"].get("Egress")) == egress]


def _denies_each_before_allows(entries: list[dict[str, Any]], cidrs: list[str]) -> bool:
    allows = [entry["RuleNumber"] for entry in entries if entry["RuleAction"] == "allow"]
    denied = {entry["CidrBlock"]: entry for entry in entries if entry["RuleAction"] == "deny"}
    return bool(allows) and all(
        cidr in denied and denied[cidr]["Protocol"] == ALL_PROTOCOLS and denied[cidr]["RuleNumber"] < min(allows)
        for cidr in cidrs)


def grade() -> list[Check]:
    settings = load_settings("dev")
    cidrs = subnet_cidrs(settings.network)
    template = synth_stack(settings, NetworkStack, "network")
    inbound, outbound = _entries(template, egress=False), _entries(template, egress=True)
    allowed_in = {(entry["CidrBlock"], entry["PortRange"]["From"], entry["PortRange"]["To"])
                  for entry in inbound if entry["RuleAction"] == "allow"}
    allowed_out = {(entry["CidrBlock"], entry["PortRange"]["From"], entry["PortRange"]["To"])
                   for entry in outbound if entry["RuleAction"] == "allow"}
    return [
        check("PostgreSQL (5432) comes in from each app subnet",
              allowed_in == {(cidr, POSTGRES, POSTGRES) for cidr in cidrs["app"]},
              "a NACL sees packets, not connections: name the app subnets' CIDRs and the one port."),
        check("replies go out to the app subnets on ephemeral ports 1024-65535",
              allowed_out == {(cidr, *EPHEMERAL) for cidr in cidrs["app"]},
              "NACLs are stateless: the reply to a client leaves from 5432 to the client's ephemeral port. Lambda "
              "and NAT use 1024-65535, Linux 32768-60999: allow the whole range AWS recommends."),
        check("inbound: an explicit deny for each public subnet, numbered before every allow",
              _denies_each_before_allows(inbound, cidrs["public"]),
              "rules are evaluated lowest number first and the first match wins; a deny numbered after an allow "
              "never bites. Security groups cannot deny at all (allow-only, stateful)."),
        check("outbound: an explicit deny to each public subnet, numbered before every allow",
              _denies_each_before_allows(outbound, cidrs["public"]),
              "stateless means both directions: a deny on the way in does not stop packets on the way out."),
        check("nothing is allowed from or to 0.0.0.0/0",
              all(entry["CidrBlock"] != "0.0.0.0/0" for entry in inbound + outbound if entry["RuleAction"] == "allow"),
              "the data tier talks to the app tier only; the implicit final rule (*) denies the rest."),
    ]


LAB = Lab(number="02", slug="security-groups-vs-nacls",
          title="Security groups vs NACLs: stateless rules, ephemeral ports",
          exam="SAA-C03 Domain 1: Design Secure Architectures", grade=grade)
