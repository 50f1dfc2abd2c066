"""Lab 02 — security groups vs NACLs: explicit, lower-numbered denies for the public tier on the data subnets.

The grader evaluates the NACL the data subnets are associated with the way VPC does — rules in number order, the
first rule that matches a packet decides — so any correct set of entries passes (one deny per public subnet, one
deny for a range that holds them all, any numbers) and entries on another NACL (the VPC's default one, say) do not.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.config import load_settings, subnet_cidrs
from refarch.stacks.selfnest.network import NetworkStack

from .grading import Check, Template, check, resources, synth_stack

POSTGRES = 5432
EPHEMERAL = (1024, 65535)
ALL_PROTOCOLS = -1
TCP = 6
Entry = dict[str, Any]


def _acl_key(reference: Any) -> str:
    """A NACL as entries and associations refer to it: {"Ref": id} or the VPC's default ({"Fn::GetAtt": ...})."""
    if isinstance(reference, dict) and "Ref" in reference:
        return str(reference["Ref"])
    return repr(reference)


def data_subnet_acl(template: Template) -> tuple[str | None, list[Entry]]:
    """The NACL every data subnet is associated with (None: the default NACL) and its entries."""
    data_subnets = {logical_id for logical_id, subnet in resources(template, "AWS::EC2::Subnet").items()
                    if "/dataSubnet" in subnet.get("Metadata", {}).get("aws:cdk:path", "")}
    associated = {_acl_key(association["Properties"]["NetworkAclId"])
                  for association in resources(template, "AWS::EC2::SubnetNetworkAclAssociation").values()
                  if association["Properties"]["SubnetId"].get("Ref") in data_subnets}
    acl = next(iter(associated)) if len(associated) == 1 else None
    entries = [entry["Properties"] for entry in resources(template, "AWS::EC2::NetworkAclEntry").values()
               if _acl_key(entry["Properties"]["NetworkAclId"]) == acl]
    return acl, sorted(entries, key=lambda entry: entry["RuleNumber"])


def _network(entry: Entry) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(entry.get("CidrBlock", "0.0.0.0/0"))


def _matches(entry: Entry, cidr: str, port: int | None) -> bool:
    if not _network(entry).overlaps(ipaddress.IPv4Network(cidr)):
        return False
    if port is None or entry["Protocol"] == ALL_PROTOCOLS:
        return True
    ports = entry.get("PortRange", {"From": 0, "To": 65535})
    return bool(entry["Protocol"] == TCP and ports["From"] <= port <= ports["To"])


def first_match(entries: list[Entry], cidr: str, port: int | None) -> Entry | None:
    """The rule that decides for packets from (or to) the whole of `cidr` on TCP `port` (None: any traffic)."""
    return next((entry for entry in entries if _matches(entry, cidr, port)), None)


def _describe(entry: Entry | None) -> str:
    if entry is None:
        return "no explicit rule (only the implicit final deny *)"
    what = "all traffic" if entry["Protocol"] == ALL_PROTOCOLS else (
        f"tcp {entry['PortRange']['From']}-{entry['PortRange']['To']}")
    return f"rule #{entry['RuleNumber']} {entry['RuleAction']} {what} {entry.get('CidrBlock')}"


def _allows(entries: list[Entry], cidr: str, low: int, high: int) -> tuple[bool, str]:
    """Whether every TCP port low..high is allowed for the whole of `cidr` (checked at every rule boundary)."""
    bounds = [bound for entry in entries if "PortRange" in entry
              for bound in (entry["PortRange"]["From"], entry["PortRange"]["To"])]
    edges = {low, high} | {edge for bound in bounds for edge in (bound - 1, bound, bound + 1)}
    for port in sorted(edge for edge in edges if low <= edge <= high):
        decided = first_match(entries, cidr, port)
        if decided is None or decided["RuleAction"] != "allow" or not ipaddress.IPv4Network(cidr).subnet_of(
                _network(decided)):
            return False, f"{cidr} port {port}: {_describe(decided)}"
    return True, ""


def _denied_first(entries: list[Entry], cidrs: list[str]) -> tuple[bool, str]:
    """Each CIDR is decided by an all-traffic deny numbered before every allow: one added later, however broad (the
    whole VPC, say), cannot open it — the lab's point, beyond what today's allows happen to cover."""
    first_allow = min((entry["RuleNumber"] for entry in entries if entry["RuleAction"] == "allow"), default=32767)
    for cidr in cidrs:
        decided = first_match(entries, cidr, None)
        if decided is None or decided["RuleAction"] != "deny" or decided["Protocol"] != ALL_PROTOCOLS \
                or not ipaddress.IPv4Network(cidr).subnet_of(_network(decided)) \
                or decided["RuleNumber"] >= first_allow:
            return False, f"first rule matching {cidr}: {_describe(decided)}; first allow: rule #{first_allow}"
    return True, ""


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")
    cidrs = subnet_cidrs(settings.network)
    template = synth_stack(settings, NetworkStack, "network")
    acl, entries = data_subnet_acl(template)
    inbound = [entry for entry in entries if not entry.get("Egress")]
    outbound = [entry for entry in entries if entry.get("Egress")]
    postgres = [_allows(inbound, cidr, POSTGRES, POSTGRES) for cidr in cidrs["app"]]
    replies = [_allows(outbound, cidr, *EPHEMERAL) for cidr in cidrs["app"]]
    denied_in, denied_out = _denied_first(inbound, cidrs["public"]), _denied_first(outbound, cidrs["public"])
    vpc = ipaddress.IPv4Network(settings.network.vpc_cidr)
    outside = [_describe(entry) for entry in entries
               if entry["RuleAction"] == "allow" and not _network(entry).subnet_of(vpc)]
    where = "the data subnets' NACL" if acl else "the data subnets have no NACL of their own (the VPC default)"
    return [
        check("the data subnets have a NACL of their own", acl is not None,
              "a NACL guards the subnets it is associated with: rules on the VPC's default NACL or on another "
              "subnet's NACL never see the database's packets.", found=where),
        check("PostgreSQL (5432) comes in from each app subnet", all(ok for ok, _ in postgres),
              "a NACL sees packets, not connections: the first rule matching an app subnet's CIDR on 5432 must allow "
              "it (a deny numbered lower, or covering the app subnets, blocks the app tier).",
              found="; ".join(seen for ok, seen in postgres if not ok)),
        check("replies go out to the app subnets on ephemeral ports 1024-65535", all(ok for ok, _ in replies),
              "NACLs are stateless: the reply to a client leaves from 5432 to the client's ephemeral port. Lambda "
              "and NAT use 1024-65535, Linux 32768-60999: allow the whole range AWS recommends.",
              found="; ".join(seen for ok, seen in replies if not ok)),
        check("inbound: each public subnet is denied by an explicit rule numbered before every allow", denied_in[0],
              "rules are evaluated lowest number first and the first match wins; a deny numbered after an allow "
              "never bites. Security groups cannot deny at all (allow-only, stateful).", found=denied_in[1]),
        check("outbound: each public subnet is denied by an explicit rule numbered before every allow",
              denied_out[0],
              "stateless means both directions: a deny on the way in does not stop packets on the way out.",
              found=denied_out[1]),
        check("nothing outside the VPC is allowed in or out", bool(acl) and not outside,
              "the data tier talks to the app tier only; the implicit final rule (*) denies the rest.",
              found="; ".join(outside)),
    ]

