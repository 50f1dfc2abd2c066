"""`refarch show PART`: a synthesized stack's subnets, routes, rules, tables and capacity in readable form."""

from __future__ import annotations

from refarch.stacks.selfnest.config import load_settings, subnet_cidrs
from refarch.tools import cli
from refarch.tools.show import render

from tests.entry_points import run_main


def test_render_lists_subnets_routes_nacl_rules_and_capacity() -> None:
    template = {"Resources": {
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"CidrBlock": "10.0.0.0/24", "AvailabilityZone": "a"},
                   "Metadata": {"aws:cdk:path": "net/Vpc/dataSubnet1/Subnet/Resource"}},
        "Route": {"Type": "AWS::EC2::Route", "Properties": {"RouteTableId": {"Ref": "T"},
                                                           "DestinationCidrBlock": "0.0.0.0/0",
                                                           "NatGatewayId": {"Ref": "Nat"}}},
        "Entry": {"Type": "AWS::EC2::NetworkAclEntry", "Properties": {
            "NetworkAclId": {"Ref": "Acl"}, "RuleNumber": 100, "RuleAction": "allow", "Protocol": 6,
            "PortRange": {"From": 5432, "To": 5432}, "CidrBlock": "10.0.4.0/22"}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": "t", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 50, "WriteCapacityUnits": 100}}},
        "ReadScaling": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "ResourceId": {"Fn::Join": ["", ["table/", {"Ref": "Table"}]]}, "MinCapacity": 50, "MaxCapacity": 200,
            "ScalableDimension": "dynamodb:table:ReadCapacityUnits"}},
    }}
    shown = render("network", template)
    assert "Vpc/dataSubnet1/Subnet: 10.0.0.0/24 in a" in shown
    assert "0.0.0.0/0 -> NatGateway Nat" in shown
    assert "#100 allow tcp 5432 10.0.4.0/22" in shown
    assert "t: pk (hash); provisioned 50 RCU (auto scaling 50-200), 100 WCU" in shown


def test_refarch_show_network_prints_the_configured_subnets() -> None:
    result = run_main(cli.main, ["show", "network"])   # `refarch` as a process: tests/labs (`make lab`)
    assert result.returncode == 0, result.stderr
    for cidrs in subnet_cidrs(load_settings("dev").network).values():
        assert all(cidr in result.stdout for cidr in cidrs)


def test_refarch_show_unknown_part_is_one_line() -> None:
    result = run_main(cli.main, ["show", "moon"])
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no stack part moon" in result.stderr
