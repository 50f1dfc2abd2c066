"""Lab 01 — VPC CIDR and subnet sizing: dev across three zones, app subnets for 2,000 tasks, data subnets for 50."""

from __future__ import annotations

from pathlib import Path

from refarch.stacks.selfnest.config import load_settings, subnet_cidrs
from refarch.stacks.selfnest.network import NetworkStack
from refarch.tools.calculators import prefix_for_hosts, usable_hosts

from .grading import Check, check, resources, synth_stack

ZONES_WANTED = 3
APP_HOSTS = 2000   # Fargate tasks use awsvpc networking: one address per task
DATA_HOSTS = 50    # database instances, replicas and their failover addresses, with room to grow


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")
    network = settings.network
    masks = network.subnet_masks
    app_prefix, data_prefix = prefix_for_hosts(APP_HOSTS), prefix_for_hosts(DATA_HOSTS)
    expected = subnet_cidrs(network)
    template = synth_stack(settings, NetworkStack, "network")
    synthesized = sorted(subnet["Properties"]["CidrBlock"]
                         for subnet in resources(template, "AWS::EC2::Subnet").values())
    return [
        check(f"dev spans {ZONES_WANTED} availability zones", len(network.availability_zones) == ZONES_WANTED,
              "network.availability_zones: list three zones of the region. Every tier gets one subnet "
              "per zone, so losing a zone leaves two (SAA: design resilient architectures).",
              found=f"{len(network.availability_zones)} zones: {', '.join(network.availability_zones)}"),
        check(f"each app subnet holds at least {APP_HOSTS} tasks", usable_hosts(masks.app) >= APP_HOSTS,
              f"a /{masks.app} has 2^(32-{masks.app}) - 5 = {usable_hosts(masks.app)} usable addresses (AWS keeps 5 "
              f"per subnet). Try `refarch calc subnet --hosts {APP_HOSTS}`.",
              found=f"app subnets /{masks.app} = {usable_hosts(masks.app)} usable addresses"),
        check("app subnets are the smallest that fit (no wasted space)", masks.app == app_prefix,
              f"subnets cannot be resized, but a VPC's space is finite: /{app_prefix} is the smallest with "
              f">= {APP_HOSTS} usable addresses ({usable_hosts(app_prefix)}).",
              found=f"app subnets /{masks.app}"),
        check(f"data subnets are the smallest that hold {DATA_HOSTS} addresses", masks.data == data_prefix,
              f"`refarch calc subnet --hosts {DATA_HOSTS}` -> /{data_prefix} ({usable_hosts(data_prefix)} usable); "
              f"a /{masks.data} has {usable_hosts(masks.data)}.", found=f"data subnets /{masks.data}"),
        check("the synthesized VPC has exactly the subnets the config model allocates",
              synthesized == sorted(cidr for cidrs in expected.values() for cidr in cidrs),
              "CDK allocates tiers in order, each subnet aligned to its own size; subnet_cidrs() predicts it. "
              "Compare `refarch show network` with the config.", found=", ".join(synthesized)),
    ]

