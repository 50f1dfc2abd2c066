"""Lab 03 — public web tier, private app and database: the scenario where dev's tasks may not have public IPs.

Dev's default (no NAT; tasks with public IPs behind a security group that admits only the load balancer) is a
deliberate cost trade, argued in docs/architecture.md. This lab is the other side of that trade: a review requires
that no task holding health data has a public address, even in dev, at the lowest cost that still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.config import load_settings

from .grading import Check, check, resources, synth_parts


def _default_routes(network: dict[str, Any], tier: str) -> list[dict[str, Any]]:
    return [route["Properties"] for route in resources(network, "AWS::EC2::Route").values()
            if f"/{tier}Subnet" in route.get("Metadata", {}).get("aws:cdk:path", "")
            and route["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"]


def _target(route: dict[str, Any]) -> str:
    return next((key for key in ("NatGatewayId", "GatewayId", "NetworkInterfaceId", "TransitGatewayId")
                 if key in route), "nothing")


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")

    templates = synth_parts(settings, ["network", "data", "web"])
    network, web, data = templates["network"], templates["web"], templates["data"]
    balancers = [item["Properties"] for item in resources(web, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()]
    services = [item["Properties"] for item in resources(web, "AWS::ECS::Service").values()]
    databases = [item["Properties"] for item in resources(data, "AWS::RDS::DBInstance").values()]
    app_routes, data_routes = _default_routes(network, "app"), _default_routes(network, "data")
    public_ips = sorted({service["NetworkConfiguration"]["AwsvpcConfiguration"].get("AssignPublicIp", "DISABLED")
                         for service in services})
    nat_gateways = len(resources(network, "AWS::EC2::NatGateway"))
    return [
        check("the load balancer is internet-facing (the only public entry)",
              bool(balancers) and all(balancer.get("Scheme") == "internet-facing" for balancer in balancers),
              "the web tier's front door lives in the public subnets; everything behind it should not.",
              found=", ".join(str(balancer.get("Scheme", "internal (default)")) for balancer in balancers)),
        check("app tasks get no public IP", bool(services) and public_ips == ["DISABLED"],
              "the scenario forbids public addresses on tasks. Dev's default gives them one on purpose (no NAT to "
              "pay for; the security group admits only the ALB — docs/architecture.md): without a public IP, "
              "tasks in private subnets need a NAT gateway for image pulls, logs and AWS APIs without endpoints.",
              found=f"AssignPublicIp {', '.join(public_ips)}"),
        check("app subnets reach out through a NAT gateway, not the internet gateway",
              bool(app_routes) and all(_target(route) == "NatGatewayId" for route in app_routes),
              "a private subnet's default route points at a NAT gateway; a route to the internet gateway makes the "
              "subnet public. network.nat_gateways in config/dev.yaml chooses how many.",
              found=", ".join(_target(route) for route in app_routes) or "no default route in the app subnets"),
        check("dev pays for one NAT gateway, not one per zone", nat_gateways == 1,
              "a NAT gateway costs ~$33/month per AZ before traffic: the cheapest shape that works shares one "
              "(if its AZ fails, dev's egress fails with it — acceptable for dev; prod runs one per AZ).",
              found=f"{nat_gateways} NAT gateways"),
        check("the database is not publicly accessible and its subnets have no route out",
              bool(databases) and all(database.get("PubliclyAccessible") is False for database in databases)
              and not data_routes,
              "PRIVATE_ISOLATED subnets: no internet gateway, no NAT. RDS needs no egress.",
              found=f"{len(data_routes)} default routes in the data subnets"),
    ]

