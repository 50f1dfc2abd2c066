"""Network tier: subnet placement, routes, NAT per environment, the security-group chain and the data NACL."""

from __future__ import annotations

import json
from typing import Any

from refarch.stacks.selfnest.config import subnet_cidrs

from .assembly import Assembly, cidr_ingress, get_att, ref


def subnets_by_tier(assembly: Assembly) -> dict[str, dict[str, dict[str, Any]]]:
    tiers: dict[str, dict[str, dict[str, Any]]] = {}
    for logical_id, subnet in assembly.resources("network", "AWS::EC2::Subnet").items():
        tags = {tag["Key"]: tag["Value"] for tag in subnet["Properties"]["Tags"]}
        tiers.setdefault(tags["aws-cdk:subnet-name"], {})[logical_id] = subnet
    return tiers


def route_table_of(assembly: Assembly, subnet_id: str) -> str:
    associations: list[str] = [association["Properties"]["RouteTableId"]["Ref"]
                    for association in assembly.resources("network", "AWS::EC2::SubnetRouteTableAssociation").values()
                    if association["Properties"]["SubnetId"] == ref(subnet_id)]
    assert len(associations) == 1
    return associations[0]


def routes_of(assembly: Assembly, route_table_id: str) -> list[dict[str, Any]]:
    return [route["Properties"] for route in assembly.resources("network", "AWS::EC2::Route").values()
            if route["Properties"]["RouteTableId"] == ref(route_table_id)]


def security_group_id(assembly: Assembly, construct_path_suffix: str) -> str:
    matches = [logical_id for logical_id, group in assembly.resources("network", "AWS::EC2::SecurityGroup").items()
               if group["Metadata"]["aws:cdk:path"].endswith(construct_path_suffix)]
    assert len(matches) == 1, matches
    return matches[0]


def test_subnets_are_allocated_as_the_config_model_predicts(assembly: Assembly) -> None:
    expected = subnet_cidrs(assembly.settings.network)
    actual = {tier: sorted(subnet["Properties"]["CidrBlock"] for subnet in subnets.values())
              for tier, subnets in subnets_by_tier(assembly).items()}
    assert actual == {tier: sorted(cidrs) for tier, cidrs in expected.items()}


def test_each_tier_spans_every_configured_zone(assembly: Assembly) -> None:
    for tier, subnets in subnets_by_tier(assembly).items():
        zones = sorted(subnet["Properties"]["AvailabilityZone"] for subnet in subnets.values())
        assert zones == sorted(assembly.settings.network.availability_zones), tier


def test_data_subnets_have_no_route_out_at_all(assembly: Assembly) -> None:
    for subnet_id, subnet in subnets_by_tier(assembly)["data"].items():
        assert routes_of(assembly, route_table_of(assembly, subnet_id)) == [], subnet_id
        assert subnet["Properties"].get("MapPublicIpOnLaunch") in (None, False)


def test_nat_gateways_follow_the_environment(dev: Assembly, prod: Assembly) -> None:
    assert len(dev.resources("network", "AWS::EC2::NatGateway")) == dev.settings.network.nat_gateway_count
    prod_nats = prod.resources("network", "AWS::EC2::NatGateway")
    assert len(prod_nats) == len(prod.settings.network.availability_zones) == 3
    assert len({nat["Properties"]["SubnetId"]["Ref"] for nat in prod_nats.values()}) == 3  # one per AZ


def test_app_subnets_reach_out_through_nat_when_configured_else_through_the_igw(assembly: Assembly) -> None:
    through_nat = assembly.settings.network.nat_gateway_count > 0
    for subnet_id in subnets_by_tier(assembly)["app"]:
        [default] = [r for r in routes_of(assembly, route_table_of(assembly, subnet_id))
                     if r["DestinationCidrBlock"] == "0.0.0.0/0"]
        assert ("NatGatewayId" in default) == through_nat and ("GatewayId" in default) != through_nat


def test_database_security_group_admits_only_the_app_group_on_5432(assembly: Assembly) -> None:
    database = security_group_id(assembly, "SecurityGroups/Database/Resource")
    app = security_group_id(assembly, "SecurityGroups/App/Resource")
    assert assembly.rules(database, "ingress") == [
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "SourceSecurityGroupId": get_att(app, "GroupId")}]
    # CDK's "disallow all" placeholder: the database initiates no connections.
    assert [rule["CidrIp"] for rule in assembly.rules(database, "egress")] == ["255.255.255.255/32"]


def test_only_the_load_balancer_is_open_to_the_internet_and_only_on_web_ports(assembly: Assembly) -> None:
    load_balancer = security_group_id(assembly, "SecurityGroups/LoadBalancer/Resource")
    open_ports: set[int] = set()
    for group_id in assembly.resources("network", "AWS::EC2::SecurityGroup"):
        for rule in assembly.rules(group_id, "ingress"):
            if cidr_ingress(rule) in ("0.0.0.0/0", "::/0"):
                assert group_id == load_balancer, f"{group_id} is open to the world: {rule}"
                assert rule["FromPort"] == rule["ToPort"]
                open_ports.add(rule["FromPort"])
    for part in assembly.templates:
        # The DR region's replica group admits nothing at all (test_dr.py).
        assert assembly.resources(part, "AWS::EC2::SecurityGroup") == {} or part in ("network", "dr"), part
    expected = {80, 443} if assembly.settings.web.certificate_arn else {80}
    assert open_ports == expected


def test_load_balancer_sends_only_to_app_tasks_on_the_container_port(assembly: Assembly) -> None:
    load_balancer = security_group_id(assembly, "SecurityGroups/LoadBalancer/Resource")
    app = security_group_id(assembly, "SecurityGroups/App/Resource")
    port = assembly.settings.web.container_port
    assert assembly.rules(app, "ingress") == [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "SourceSecurityGroupId": get_att(load_balancer,
                                                                                                 "GroupId")}]
    assert assembly.rules(load_balancer, "egress") == [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "DestinationSecurityGroupId": get_att(app,
                                                                                                      "GroupId")}]


def test_a_secrets_manager_endpoint_exists_exactly_where_a_rotation_function_needs_it(assembly: Assembly) -> None:
    """The endpoint is billed per zone-hour and only the master secret's rotation function (in the VPC, no other way
    out) needs it; where RDS rotates the master password there is neither. It admits only the app tier on HTTPS."""
    endpoints = [endpoint for endpoint in assembly.resources("network", "AWS::EC2::VPCEndpoint").values()
                 if "secretsmanager" in json.dumps(endpoint["Properties"]["ServiceName"])]
    rotation_functions = assembly.resources("data", "AWS::Serverless::Application")
    assert len(endpoints) == (1 if rotation_functions else 0)
    if not endpoints:
        return
    [endpoint] = endpoints
    network = assembly.settings.network
    zones = network.secrets_endpoint_availability_zones or network.availability_zones
    assert len(endpoint["Properties"]["SubnetIds"]) == len(zones)
    endpoint_group = security_group_id(assembly, "Vpc/Vpc/SecretsManager/SecurityGroup/Resource")
    app = security_group_id(assembly, "SecurityGroups/App/Resource")
    assert assembly.rules(endpoint_group, "ingress") == [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": get_att(app, "GroupId")}]


def test_data_nacl_allows_postgres_in_and_ephemeral_replies_out_to_app_subnets_only(assembly: Assembly) -> None:
    [(acl_id, _)] = assembly.resources("network", "AWS::EC2::NetworkAcl").items()
    app_cidrs = sorted(subnet_cidrs(assembly.settings.network)["app"])
    entries = [entry["Properties"] for entry in assembly.resources("network", "AWS::EC2::NetworkAclEntry").values()
               if entry["Properties"]["NetworkAclId"] == ref(acl_id)]
    allows = [e for e in entries if e["RuleAction"] == "allow"]
    inbound = sorted((e["CidrBlock"], e["PortRange"]["From"], e["PortRange"]["To"], e["Protocol"])
                     for e in allows if not e.get("Egress"))
    outbound = sorted((e["CidrBlock"], e["PortRange"]["From"], e["PortRange"]["To"], e["Protocol"])
                      for e in allows if e.get("Egress"))
    assert inbound == [(cidr, 5432, 5432, 6) for cidr in app_cidrs]
    assert outbound == [(cidr, 1024, 65535, 6) for cidr in app_cidrs]
    # Explicit denies (optional, lab 02) only mean something numbered before every allow of their direction.
    for egress in (False, True):
        denies = [e["RuleNumber"] for e in entries if e["RuleAction"] == "deny" and bool(e.get("Egress")) == egress]
        assert all(number < min(e["RuleNumber"] for e in allows if bool(e.get("Egress")) == egress)
                   for number in denies)
    associated = sorted(a["Properties"]["SubnetId"]["Ref"]
                        for a in assembly.resources("network", "AWS::EC2::SubnetNetworkAclAssociation").values()
                        if a["Properties"]["NetworkAclId"] == ref(acl_id))
    assert associated == sorted(subnets_by_tier(assembly)["data"])


def test_flow_logs_capture_all_traffic_into_an_encrypted_log_group(assembly: Assembly) -> None:
    _, flow_log = assembly.only("network", "AWS::EC2::FlowLog")
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    log_group_id = flow_log["Properties"]["LogGroupName"]["Ref"]
    log_group = assembly.resources("network", "AWS::Logs::LogGroup")[log_group_id]["Properties"]
    assert "KmsKeyId" in log_group
    assert log_group["RetentionInDays"] == assembly.settings.network.flow_log_retention_days


def test_free_gateway_endpoints_serve_the_app_and_data_tiers(assembly: Assembly) -> None:
    endpoints = assembly.resources("network", "AWS::EC2::VPCEndpoint").values()
    gateways = {e["Properties"]["ServiceName"]["Fn::Join"][1][-1]: e for e in endpoints
                if e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"}
    assert sorted(gateways) == [".dynamodb", ".s3"]
    tiers = subnets_by_tier(assembly)
    expected_tables = sorted({route_table_of(assembly, s) for tier in ("app", "data") for s in tiers[tier]})
    for endpoint in gateways.values():
        assert sorted(table["Ref"] for table in endpoint["Properties"]["RouteTableIds"]) == expected_tables
