"""`refarch show PART [--env dev|prod] [--dr-tier ...]`: what a synthesized Selfnest stack holds, in readable form —
subnets and routes, security-group and NACL rules, tables and their capacity, queues, lifecycle rules — so a learner
can see what a config change did without reading CloudFormation JSON.

Only the stack asked for (and the stacks it is handed) is synthesized, the way the lab graders do it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

Resource = dict[str, Any]
Template = dict[str, Any]


def _ref(value: Any) -> str:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return ".".join(str(part) for part in value["Fn::GetAtt"])
        if "Fn::ImportValue" in value or "Fn::GetStackOutput" in value:
            return "(from another stack)"
        if "Fn::Join" in value:
            return "".join(_ref(part) for part in value["Fn::Join"][1])
    return str(value)


def _path(resource: Resource) -> str:
    """The construct path without the stack prefix and the trailing /Resource: what the code calls it."""
    path = str(resource.get("Metadata", {}).get("aws:cdk:path", ""))
    return path.split("/", 1)[-1].removesuffix("/Resource")


def _of(template: Template, resource_type: str) -> Iterator[tuple[str, Resource]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == resource_type:
            yield logical_id, resource


def _ports(rule: Resource) -> str:
    if rule.get("CidrIp") == "255.255.255.255/32" and rule.get("FromPort") == 252:
        return "nothing (CDK's placeholder for 'no egress')"
    protocol = str(rule.get("IpProtocol", rule.get("Protocol", "-1")))
    if protocol in {"-1", "all"}:
        return "all traffic"
    low = rule.get("FromPort", rule.get("PortRange", {}).get("From"))
    high = rule.get("ToPort", rule.get("PortRange", {}).get("To"))
    name = {"6": "tcp", "17": "udp"}.get(protocol, protocol)
    return f"{name} {low}" if low == high else f"{name} {low}-{high}"


def subnets(template: Template) -> list[str]:
    lines = []
    for logical_id, subnet in _of(template, "AWS::EC2::Subnet"):
        properties = subnet["Properties"]
        zone = properties.get("AvailabilityZone", "")
        public = " public IPs" if properties.get("MapPublicIpOnLaunch") else ""
        lines.append(f"{_path(subnet) or logical_id}: {properties.get('CidrBlock')} in {_ref(zone)}{public}")
    return lines


def routes(template: Template) -> list[str]:
    lines = []
    for logical_id, route in _of(template, "AWS::EC2::Route"):
        properties = route["Properties"]
        target = next((f"{key.removesuffix('Id')} {_ref(value)}" for key, value in properties.items()
                       if key.endswith("Id") and key != "RouteTableId"), "?")
        destination = properties.get("DestinationCidrBlock") or properties.get("DestinationIpv6CidrBlock")
        lines.append(f"{_path(route) or logical_id}: {destination} -> {target}")
    return lines


def security_rules(template: Template) -> list[str]:
    lines = []
    for logical_id, group in _of(template, "AWS::EC2::SecurityGroup"):
        name = _path(group) or logical_id
        for direction, key in (("in ", "SecurityGroupIngress"), ("out", "SecurityGroupEgress")):
            for rule in group["Properties"].get(key, []):
                peer = rule.get("CidrIp") or rule.get("CidrIpv6") or _ref(
                    rule.get("SourceSecurityGroupId") or rule.get("DestinationSecurityGroupId"))
                lines.append(f"{name} {direction} {_ports(rule)} {'from' if direction == 'in ' else 'to'} {peer}")
    for resource_type, direction in (("AWS::EC2::SecurityGroupIngress", "in "), ("AWS::EC2::SecurityGroupEgress",
                                                                                "out")):
        for _, rule in _of(template, resource_type):
            properties = rule["Properties"]
            peer = properties.get("CidrIp") or _ref(properties.get("SourceSecurityGroupId")
                                                    or properties.get("DestinationSecurityGroupId"))
            lines.append(f"{_ref(properties.get('GroupId'))} {direction} {_ports(properties)} "
                         f"{'from' if direction == 'in ' else 'to'} {peer}")
    return lines


def nacl_rules(template: Template) -> list[str]:
    entries = sorted((entry["Properties"] for _, entry in _of(template, "AWS::EC2::NetworkAclEntry")),
                     key=lambda entry: (_ref(entry["NetworkAclId"]), bool(entry.get("Egress")), entry["RuleNumber"]))
    associations = Counter(_ref(association["Properties"]["NetworkAclId"])
                           for _, association in _of(template, "AWS::EC2::SubnetNetworkAclAssociation"))
    return [f"{_ref(entry['NetworkAclId'])} ({associations[_ref(entry['NetworkAclId'])]} subnets) "
            f"{'out' if entry.get('Egress') else 'in '} #{entry['RuleNumber']} {entry['RuleAction']} {_ports(entry)} "
            f"{entry.get('CidrBlock')}" for entry in entries]


def _scaling(what: str, settings: Resource) -> str:
    if not settings:
        return f"{what} fixed"
    return f"{what} auto scaling {settings.get('MinCapacity')}-{settings.get('MaxCapacity')}"


def tables(template: Template) -> list[str]:
    lines = []
    scaling = {}
    for _, target in _of(template, "AWS::ApplicationAutoScaling::ScalableTarget"):
        properties = target["Properties"]
        scaling[(_ref(properties["ResourceId"]), properties["ScalableDimension"].rsplit(":", 1)[-1])] = (
            properties["MinCapacity"], properties["MaxCapacity"])
    for resource_type in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        for logical_id, table in _of(template, resource_type):
            properties = table["Properties"]
            keys = ", ".join(f"{key['AttributeName']} ({key['KeyType'].lower()})" for key in properties["KeySchema"])
            throughput = properties.get("ProvisionedThroughput")
            if throughput:
                read = scaling.get((f"table/{logical_id}", "ReadCapacityUnits"))
                write = scaling.get((f"table/{logical_id}", "WriteCapacityUnits"))
                capacity = (f"provisioned {throughput['ReadCapacityUnits']} RCU"
                            f"{f' (auto scaling {read[0]}-{read[1]})' if read else ''}, "
                            f"{throughput['WriteCapacityUnits']} WCU"
                            f"{f' (auto scaling {write[0]}-{write[1]})' if write else ''}")
            elif properties.get("BillingMode", "PAY_PER_REQUEST") == "PAY_PER_REQUEST":
                capacity = "on demand"
            else:   # a global table: auto scaling is part of the table — writes for all replicas, reads per replica
                capacity = "provisioned: " + "; ".join(
                    [_scaling("writes", properties.get("WriteProvisionedThroughputSettings", {})
                              .get("WriteCapacityAutoScalingSettings", {}))]
                    + [_scaling(f"{replica['Region']} reads", replica.get("ReadProvisionedThroughputSettings", {})
                                .get("ReadCapacityAutoScalingSettings", {}))
                       for replica in properties.get("Replicas", [])])
            indexes = "; ".join(
                f"index {index['IndexName']}: " + ", ".join(f"{key['AttributeName']} ({key['KeyType'].lower()})"
                                                           for key in index["KeySchema"])
                for index in properties.get("GlobalSecondaryIndexes", []))
            extras = [f"TTL {properties['TimeToLiveSpecification']['AttributeName']}"
                      if properties.get("TimeToLiveSpecification", {}).get("Enabled") else "",
                      "replicas " + ", ".join(replica["Region"] for replica in properties.get("Replicas", []))
                      if properties.get("Replicas") else "", indexes]
            lines.append(f"{properties.get('TableName', logical_id)}: {keys}; {capacity}"
                         + "".join(f"; {extra}" for extra in extras if extra))
    return lines


def queues(template: Template) -> list[str]:
    lines = []
    for logical_id, queue in _of(template, "AWS::SQS::Queue"):
        properties = queue["Properties"]
        redrive = properties.get("RedrivePolicy")
        lines.append(f"{properties.get('QueueName', logical_id)}: visibility "
                     f"{properties.get('VisibilityTimeout', 30)} s, retention "
                     f"{properties.get('MessageRetentionPeriod', 345600) // 86400} d"
                     + (f", to {_ref(redrive['deadLetterTargetArn'])} after {redrive['maxReceiveCount']} receives"
                        if redrive else ""))
    return lines


def lifecycle(template: Template) -> list[str]:
    lines = []
    for logical_id, bucket in _of(template, "AWS::S3::Bucket"):
        properties = bucket["Properties"]
        versioning = properties.get("VersioningConfiguration", {}).get("Status", "off")
        replication = properties.get("ReplicationConfiguration")
        lines.append(f"{_path(bucket) or logical_id}: versioning {versioning}"
                     + (", replicated" if replication else ""))
        for rule in properties.get("LifecycleConfiguration", {}).get("Rules", []):
            prefix = rule.get("Prefix") or rule.get("Filter", {}).get("Prefix") or "(all objects)"
            steps = [f"{transition['StorageClass']} at day {transition['TransitionInDays']}"
                     for transition in rule.get("Transitions", [])]
            if "ExpirationInDays" in rule:
                steps.append(f"expire at day {rule['ExpirationInDays']}")
            if "NoncurrentVersionExpiration" in rule:
                steps.append(f"noncurrent versions expire after "
                             f"{rule['NoncurrentVersionExpiration']['NoncurrentDays']} d")
            lines.append(f"  {prefix}: {', '.join(steps) or rule.get('Status')}")
    return lines


SECTIONS: dict[str, Callable[[Template], list[str]]] = {
    "subnets": subnets, "routes": routes, "security groups": security_rules, "network ACLs": nacl_rules,
    "DynamoDB tables": tables, "SQS queues": queues, "S3 buckets": lifecycle,
}


def render(part: str, template: Template) -> str:
    out = [f"{part}: {len(template['Resources'])} resources"]
    for title, section in SECTIONS.items():
        lines = section(template)
        if lines:
            out.append(f"\n{title}:")
            out.extend(f"  {line}" for line in lines)
    counts = Counter(resource["Type"] for resource in template["Resources"].values())
    out.append("\nby type: " + ", ".join(f"{name.removeprefix('AWS::')} {count}"
                                         for name, count in sorted(counts.items())))
    return "\n".join(out)


def show(part: str, *, environment: str, dr_tier: str | None) -> str:
    from refarch.labs.grading import synth_parts
    from refarch.stacks.selfnest.config import ConfigError, load_settings

    try:
        settings = load_settings(environment, dr_tier=dr_tier)
    except ConfigError as error:
        raise ValueError(str(error)) from None
    return render(part, synth_parts(settings, [part])[part])
