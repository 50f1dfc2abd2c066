"""Lab 03 — public web tier, private app and database: dev's tasks move behind one shared NAT gateway."""

from __future__ import annotations

from typing import Any

from refarch.stacks.selfnest.config import load_settings

from .grading import Check, Lab, check, resources, synth_environment


def _default_routes(network: dict[str, Any], tier: str) -> list[dict[str, Any]]:
    return [route["Properties"] for route in resources(network, "AWS::EC2::Route").values()
            if f"/{tier}Subnet" in route.get("Metadata", {}).get("aws:cdk:path", "")
            and route["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"]


def grade() -> list[Check]:
    settings = load_settings("dev")
    templates = synth_environment(settings)
    network, web, data = templates["network"], templates["web"], templates["data"]
    [load_balancer] = resources(web, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    [service] = resources(web, "AWS::ECS::Service").values()
    [database] = resources(data, "AWS::RDS::DBInstance").values()
    app_routes, data_routes = _default_routes(network, "app"), _default_routes(network, "data")
    public_ip = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"]
    return [
        check("the load balancer is internet-facing (the only public entry)",
              load_balancer["Properties"]["Scheme"] == "internet-facing",
              "the web tier's front door lives in the public subnets; everything behind it should not."),
        check("app tasks get no public IP", public_ip == "DISABLED",
              "a task with a public IP is one security-group mistake away from the internet. Private subnets need "
              "a NAT gateway for outbound calls (image pulls, logs, AWS APIs without endpoints)."),
        check("app subnets reach out through a NAT gateway, not the internet gateway",
              bool(app_routes) and all("NatGatewayId" in route for route in app_routes),
              "set network.nat_gateways in config/dev.yaml: `single` gives private app subnets one shared NAT."),
        check("exactly one NAT gateway in dev", len(resources(network, "AWS::EC2::NatGateway")) == 1,
              "a NAT gateway costs ~$33/month per AZ before traffic: dev shares one (if its AZ fails, dev's egress "
              "fails with it — acceptable for dev, not for prod, which runs one per AZ)."),
        check("the database is not publicly accessible and its subnets have no route out",
              database["Properties"].get("PubliclyAccessible") is False and not data_routes,
              "PRIVATE_ISOLATED subnets: no internet gateway, no NAT. RDS needs no egress."),
    ]


LAB = Lab(number="03", slug="web-tier-placement", title="Public web tier, private app and database placement",
          exam="SAA-C03 Domain 1: Design Secure Architectures; Domain 4: Design Cost-Optimized Architectures",
          grade=grade)
