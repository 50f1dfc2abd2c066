"""Answers a learner may give to each lab, beside the reference patch: a *different* correct one (must pass) and the
mistake learners typically make (must fail, on a check whose hint names the concept).

Answers are edits, not patches: a YAML key set through the file's structure, or a code change anchored on one line
that must exist (`replace` fails loudly when another change moved it), so they survive unrelated edits to the files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from refarch.stacks.selfnest.config import load_settings, subnet_cidrs

Edit = Callable[[Path], None]


class AnswerNoLongerAppliesError(AssertionError):
    """The code an answer edits has moved: update the answer (and check the lab's page and reference patch)."""


def set_yaml(relative: str, **values: Any) -> Edit:
    """Set keys (dotted paths, `__` for dots: network__nat_gateways="single") in a YAML file of the copy."""
    def edit(root: Path) -> None:
        path = root / relative
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for dotted, value in values.items():
            *parents, last = dotted.split("__")
            node = document
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return edit


def replace(relative: str, anchor: str, replacement: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / relative
        text = path.read_text(encoding="utf-8")
        if text.count(anchor) != 1:
            raise AnswerNoLongerAppliesError(f"{relative}: expected the line {anchor.strip()!r} exactly once "
                                        f"(found {text.count(anchor)})")
        path.write_text(text.replace(anchor, replacement), encoding="utf-8")
    return edit


def both(*edits: Edit) -> Edit:
    def edit(root: Path) -> None:
        for each in edits:
            each(root)
    return edit


@dataclass(frozen=True, kw_only=True)
class Answer:
    name: str
    edit: Edit
    correct: bool
    # For a wrong answer: the checks that must fail (names, as printed) and a word its hint must contain.
    failing: frozenset[str] = field(default_factory=frozenset)
    concept: str = ""


NACL_ANCHOR = "        # Everything else falls through to the NACL's implicit final deny (rule *).\n"
NACL_FILE = "constructs/aws/network.py"


def _public_blocks() -> list[str]:
    """The dev public subnets as the fewest CIDR blocks (e.g. two /24s -> one /23)."""
    public = subnet_cidrs(load_settings("dev").network)["public"]
    return [str(block) for block in ipaddress.collapse_addresses(ipaddress.IPv4Network(cidr) for cidr in public)]


def nacl_denies(*, first_rule: int, acl: str = "self.acl", blocks: list[str] | None = None) -> Edit:
    """Deny all traffic from/to the public subnets on `acl`, numbered from `first_rule`."""
    lines = []
    for index, block in enumerate(blocks or _public_blocks()):
        for direction in ("INGRESS", "EGRESS"):
            if acl == "self.acl":
                lines.append(
                    f"        self.acl.add_entry('Deny{direction.title()}{index}', rule_number={first_rule + index}, "
                    f"cidr=ec2.AclCidr.ipv4('{block}'), traffic=ec2.AclTraffic.all_traffic(), "
                    f"direction=ec2.TrafficDirection.{direction}, rule_action=ec2.Action.DENY)\n")
            else:   # an entry on another NACL, by its ID
                lines.append(
                    f"        ec2.CfnNetworkAclEntry(self, 'Deny{direction.title()}{index}', network_acl_id={acl}, "
                    f"rule_number={first_rule + index}, cidr_block='{block}', protocol=-1, rule_action='deny', "
                    f"egress={direction == 'EGRESS'})\n")
    return replace(NACL_FILE, NACL_ANCHOR, "".join(lines) + NACL_ANCHOR)


CHAT = "constructs/aws/chat.py"
INDEX_ANCHOR = ("        self.connections: dynamodb.Table = connections.table  # type: ignore[assignment]  # never "
                "replicated\n")
PROGRAM = "stacks/babybloom/program.py"
CONTAINER_ANCHOR = '    ContainerSpec(name="weekly_content", partition_key="/week"),\n'
SETTINGS_ANCHOR = '                "KEY_VAULT_URI": vault.vault_uri,\n'


def container(arguments: str) -> Edit:
    return replace(PROGRAM, CONTAINER_ANCHOR,
                   CONTAINER_ANCHOR + f'    ContainerSpec(name="kick_counts", {arguments}),\n')


def app_settings(text: str) -> Edit:
    return replace(PROGRAM, SETTINGS_ANCHOR, text + SETTINGS_ANCHOR)


def autoscale(maximum: int) -> Edit:
    def edit(root: Path) -> None:
        path = root / "Pulumi.prod.yaml"
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document["config"]["babybloom:cosmos"]["autoscaleMaxThroughput"] = maximum
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return edit


DEV, PROD = "config/dev.yaml", "config/prod.yaml"
OBJECTIVES_15 = "labs/15-dr-warm-standby/objectives.yaml"

ANSWERS: dict[str, list[Answer]] = {
    "01": [
        Answer(name="three zones, smaller public subnets, another VPC range", correct=True,
               edit=set_yaml(DEV, network__vpc_cidr="10.40.0.0/16",
                             network__availability_zones=["eu-west-1c", "eu-west-1a", "eu-west-1b"],
                             network__subnet_masks={"public": 26, "app": 21, "data": 26})),
        Answer(name="data subnets sized for 50 hosts without the 5 AWS reserves (/27 = 27 usable)", correct=False,
               edit=set_yaml(DEV, network__availability_zones=["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                             network__subnet_masks={"public": 24, "app": 21, "data": 27}),
               failing=frozenset({"data subnets are the smallest that hold 50 addresses"}), concept="usable"),
    ],
    "02": [
        Answer(name="one deny per collapsed public block, numbered 1", correct=True, edit=nacl_denies(first_rule=1)),
        Answer(name="denies numbered after the allows", correct=False, edit=nacl_denies(first_rule=300),
               failing=frozenset({
                   "inbound: each public subnet is denied by an explicit rule numbered before every allow",
                   "outbound: each public subnet is denied by an explicit rule numbered before every allow"}),
               concept="lowest number first"),
        Answer(name="denies on the VPC's default NACL", correct=False,
               edit=nacl_denies(first_rule=50, acl="vpc.vpc_default_network_acl"),
               failing=frozenset({
                   "inbound: each public subnet is denied by an explicit rule numbered before every allow",
                   "outbound: each public subnet is denied by an explicit rule numbered before every allow"}),
               concept="first match"),
    ],
    "03": [
        Answer(name="one shared NAT across three zones", correct=True,
               edit=set_yaml(DEV, network__nat_gateways="single",
                             network__availability_zones=["eu-west-1a", "eu-west-1b", "eu-west-1c"])),
        Answer(name="a NAT gateway per zone in dev", correct=False,
               edit=set_yaml(DEV, network__nat_gateways="one_per_az"),
               failing=frozenset({"dev pays for one NAT gateway, not one per zone"}), concept="$33/month"),
    ],
    "04": [
        Answer(name="required MFA with 5-minute access tokens", correct=True,
               edit=set_yaml(PROD, identity__mfa="required", identity__access_token_minutes=5)),
        Answer(name="short tokens, MFA left optional", correct=False,
               edit=set_yaml(PROD, identity__access_token_minutes=15),
               failing=frozenset({"prod requires MFA of every user"}), concept="MfaConfiguration ON"),
    ],
    "05": [
        Answer(name="90 s consumers with 600 s visibility", correct=True,
               edit=set_yaml(DEV, messaging__consumer_timeout_seconds=90, messaging__visibility_timeout_seconds=600,
                             messaging__max_receive_count=3)),
        Answer(name="a longer consumer timeout, visibility left at 180 s", correct=False,
               edit=set_yaml(DEV, messaging__consumer_timeout_seconds=60, messaging__max_receive_count=3),
               failing=frozenset({"the configuration loads"}), concept="6 x consumer_timeout_seconds"),
    ],
    "06": [
        Answer(name="the same rule with its transitions listed in another order", correct=True,
               edit=set_yaml(DEV, backup__bucket__weekly={"transitions": {"GLACIER_IR": 60, "STANDARD_IA": 30},
                                                          "expire_after_days": 150})),
        Answer(name="straight to Glacier Instant Retrieval, skipping Standard-IA", correct=False,
               edit=set_yaml(DEV, backup__bucket__weekly={"transitions": {"GLACIER_IR": 30},
                                                          "expire_after_days": 150}),
               failing=frozenset({"weekly/ moves to Standard-IA as early as S3 allows, then to Glacier Instant "
                                  "Retrieval as early as Standard-IA's minimum allows"}), concept="Standard-IA"),
    ],
    "07": [
        Answer(name="provisioned with headroom (60 RCU, 120 WCU)", correct=True,
               edit=set_yaml(DEV, chat__provisioned_tables={"messages": {"read_units": 60, "write_units": 120}})),
        Answer(name="reads sized as eventually consistent (25 RCU)", correct=False,
               edit=set_yaml(DEV, chat__provisioned_tables={"messages": {"read_units": 25, "write_units": 100}}),
               failing=frozenset({"reads: enough read capacity for 25 strongly consistent reads/s of 6 KB",
                                  "auto scaling never goes below the steady load"}), concept="strong consistency"),
    ],
    "08": [
        Answer(name="pilot light in another DR region", correct=True,
               edit=set_yaml(PROD, dr__tier="pilot_light", dr__region="eu-north-1", dr__vpc_cidr="10.41.0.0/16",
                             dr__availability_zones=["eu-north-1a", "eu-north-1b"])),
        Answer(name="warm data in a second AZ of the primary region", correct=False,
               edit=set_yaml(PROD, dr__tier="pilot_light", dr__region="eu-west-1", dr__vpc_cidr="10.41.0.0/16",
                             dr__availability_zones=["eu-west-1b", "eu-west-1c"]),
               failing=frozenset({"the configuration loads"}), concept="a disaster takes both out"),
    ],
    "09": [
        Answer(name="a hierarchical key (/userId, then /date) and more autoscale headroom", correct=True,
               edit=both(container('partition_key="/userId", sub_keys=("/date",)'), autoscale(6000))),
        Answer(name="partitioned by day", correct=False,
               edit=both(container('partition_key="/date"'), autoscale(5000)),
               failing=frozenset({"`kick_counts` keeps each user's counts in one logical partition and spreads "
                                  "users' writes"}),
               concept="hot partition"),
    ],
    "10": [
        Answer(name="__serviceUri with the default (system-assigned) identity", correct=True,
               edit=app_settings('                "EXPORTS__serviceUri": storage.blob_endpoint,\n')),
        Answer(name="the bare setting name (the key-based form) holding the endpoint", correct=False,
               edit=app_settings('                "EXPORTS": storage.blob_endpoint,\n'),
               failing=frozenset({"EXPORTS__serviceUri (or __blobServiceUri) names the storage account's blob "
                                  "endpoint", "no key-based form of the connection, no key or SAS in any setting"}),
               concept="identity-based connection"),
    ],
    "11": [
        Answer(name="replication to another DR region", correct=True, edit=set_yaml(DEV, dr__region="eu-north-1")),
        Answer(name="replication within the primary region", correct=False,
               edit=set_yaml(DEV, dr__region="eu-west-1"),
               failing=frozenset({"the configuration loads"}), concept="a disaster takes both out"),
    ],
    "12": [
        Answer(name="the VaultName/SecretName form of the reference", correct=True,
               edit=app_settings('                "PUSH_API_KEY": pulumi.Output.concat("@Microsoft.KeyVault(VaultName='
                                 '", vault.vault.name, ";SecretName=push-api-key)"),\n')),
        Answer(name="the key's value pasted into the setting", correct=False,
               edit=app_settings('                "PUSH_API_KEY": "pk_test_0123456789abcdef",\n'),
               failing=frozenset({"PUSH_API_KEY is a Key Vault reference, not a value"}),
               concept="@Microsoft.KeyVault"),
    ],
    "13": [
        Answer(name="an index named otherwise, projecting user_id's keys with INCLUDE", correct=True,
               edit=replace(CHAT, INDEX_ANCHOR, INDEX_ANCHOR + (
                   "        self.connections.add_global_secondary_index(index_name='connections-of-user', "
                   "partition_key=dynamodb.Attribute(name='user_id', type=dynamodb.AttributeType.STRING), "
                   "projection_type=dynamodb.ProjectionType.INCLUDE, non_key_attributes=['connected_at'])\n"))),
        Answer(name="an index sorted by user_id under the session key", correct=False,
               edit=replace(CHAT, INDEX_ANCHOR, INDEX_ANCHOR + (
                   "        self.connections.add_global_secondary_index(index_name='by-session-user', "
                   "partition_key=dynamodb.Attribute(name='session_id', type=dynamodb.AttributeType.STRING), "
                   "sort_key=dynamodb.Attribute(name='user_id', type=dynamodb.AttributeType.STRING), "
                   "projection_type=dynamodb.ProjectionType.KEYS_ONLY)\n")),
               failing=frozenset({"a global secondary index on the connections table is partitioned by user_id"}),
               concept="partition key"),
    ],
    "15": [
        Answer(name="fast probes (10 s x 3), two standby tasks, tighter objectives", correct=True,
               edit=both(set_yaml(PROD, dr__tier="warm_standby", dr__standby_tasks=2,
                                  dr__failover__health_check_interval_seconds=10, dr__failover__failure_threshold=3),
                         set_yaml(OBJECTIVES_15, rpo_minutes=1, rto_minutes=10))),
        Answer(name="RPO zero because the replica is live", correct=False,
               edit=both(set_yaml(PROD, dr__tier="warm_standby", dr__failover__failure_threshold=2),
                         set_yaml(OBJECTIVES_15, rpo_minutes=0, rto_minutes=15)),
               failing=frozenset({"your RPO answer: more than 0 and at most 5 minutes"}), concept="asynchronously"),
        Answer(name="fail over on the first failed probe (30 s x 1)", correct=False,
               edit=both(set_yaml(PROD, dr__tier="warm_standby", dr__failover__failure_threshold=1),
                         set_yaml(OBJECTIVES_15, rpo_minutes=5, rto_minutes=15)),
               failing=frozenset({"Route 53 calls the primary unhealthy within 60 s, and not on one lost probe"}),
               concept="single lost probe"),
        Answer(name="pilot light with the failover timing tuned", correct=False,
               edit=both(set_yaml(PROD, dr__tier="pilot_light", dr__failover__failure_threshold=2),
                         set_yaml(OBJECTIVES_15, rpo_minutes=5, rto_minutes=15)),
               failing=frozenset({"prod's DR tier is warm_standby", "a scaled-down copy of the API runs in the DR "
                                  "region (at least 1 task behind its own load balancer)"}),
               concept="scaled-down"),
    ],
}

# Lab 14: the requested rename of the messages table's construct, deployed over what lab 14 records as deployed.
RENAME_ANCHOR = ('        self.messages: dynamodb.ITable = table("Messages", suffix="messages", '
                 'partition_key="session_id",\n')
DEPLOYED_MESSAGES_ID = "TablesMessagesTable2CBA8E69"


def renamed_messages(*then: str) -> Edit:
    """Rename the construct `Messages` to `History`, then run `then` (lines after the table is made)."""
    def edit(root: Path) -> None:
        path = root / CHAT
        text = path.read_text(encoding="utf-8")
        following = '                                               sort_key="message_key", replicated=True)\n'
        if text.count(RENAME_ANCHOR + following) != 1:
            raise AnswerNoLongerAppliesError(f"{CHAT}: the messages table's construct moved")
        text = text.replace(RENAME_ANCHOR + following, RENAME_ANCHOR.replace('"Messages"', '"History"') + following
                            + "".join(f"        {line}\n" for line in then))
        path.write_text(text, encoding="utf-8")
    return edit


ANSWERS["14"] = [
    Answer(name="rename, then map the new logical ID back to the deployed one on the stack", correct=True,
           edit=renamed_messages("cdk.Stack.of(self).rename_logical_id('TablesHistoryTable1C61C343', "
                                 f"'{DEPLOYED_MESSAGES_ID}')")),
    Answer(name="rename only", correct=False, edit=renamed_messages(),
           failing=frozenset({"the deployed messages table stays the same resource (its logical ID is kept)",
                              "no stateful resource of the deployed chat stack is replaced or deleted"}),
           concept="logical ID"),
    Answer(name="rename and retain the table, as if retention avoided the replacement", correct=False,
           edit=renamed_messages("self.messages.apply_removal_policy(cdk.RemovalPolicy.RETAIN)"),
           failing=frozenset({"the deployed messages table stays the same resource (its logical ID is kept)"}),
           concept="logical ID"),
    Answer(name="logical ID kept, but the table renamed to match", correct=False,
           edit=both(renamed_messages("self.messages.node.default_child.override_logical_id("
                                      f"'{DEPLOYED_MESSAGES_ID}')"),
                     replace(CHAT, 'suffix="messages", partition_key="session_id"',
                             'suffix="history", partition_key="session_id"')),
           failing=frozenset({"no stateful resource of the deployed chat stack is replaced or deleted"}),
           concept="create-only"),
]

# What each grader finds wrong on the untouched repository: a grader that starts passing a check by accident, or
# stops failing one the lab is about, is caught here.
UNTOUCHED_FAILING: dict[str, frozenset[str]] = {
    "01": frozenset({"dev spans 3 availability zones", "each app subnet holds at least 2000 tasks",
                     "app subnets are the smallest that fit (no wasted space)",
                     "data subnets are the smallest that hold 50 addresses"}),
    "02": frozenset({"inbound: each public subnet is denied by an explicit rule numbered before every allow",
                     "outbound: each public subnet is denied by an explicit rule numbered before every allow"}),
    "03": frozenset({"app tasks get no public IP", "app subnets reach out through a NAT gateway, not the internet "
                     "gateway", "dev pays for one NAT gateway, not one per zone"}),
    "04": frozenset({"prod requires MFA of every user", "access tokens live at most 15 minutes"}),
    "05": frozenset({"every consumer may run for at least 60 s", "a message moves to its DLQ after 3 receives"}),
    "06": frozenset({"weekly/ moves to Standard-IA as early as S3 allows, then to Glacier Instant Retrieval as "
                     "early as Standard-IA's minimum allows",
                     "weekly/ keeps at least 20 restore points in steady state",
                     "weekly/ expires at the first day that keeps both promises"}),
    "07": frozenset({"the chat messages table uses provisioned capacity",
                     "reads: enough read capacity for 25 strongly consistent reads/s of 6 KB",
                     "writes: enough write capacity for 50 writes/s of 1.5 KB",
                     "auto scaling never goes below the steady load"}),
    "08": frozenset({"prod's DR tier is pilot_light", "an RDS cross-region read replica of the primary runs in the DR "
                     "region", "the replica is encrypted with a key of the DR region",
                     "the replica sits in isolated subnets (no route out)"}),
    "09": frozenset({"a `kick_counts` container exists",
                     "`kick_counts` keeps each user's counts in one logical partition and spreads users' writes",
                     "prod's autoscale maximum covers the peak (2,000 point reads/s and 500 writes/s of 1 KB)"}),
    "10": frozenset({"EXPORTS__serviceUri (or __blobServiceUri) names the storage account's blob endpoint"}),
    "11": frozenset({"a replication rule is enabled, to a bucket in another region",
                     "the replica bucket is versioned too",
                     "S3 may assume a role allowed to read versions and replicate them",
                     "SSE-KMS objects replicate, re-encrypted with a key of the DR region",
                     "deletes are not replicated (the replica survives a mistaken delete)",
                     "the replica expires objects like the source (lifecycle is not replicated)"}),
    "12": frozenset({"PUSH_API_KEY is a Key Vault reference, not a value",
                     "the reference names the `push-api-key` secret in this stack's vault",
                     "the reference follows rotation (no version pinned)"}),
    "13": frozenset({"a global secondary index on the connections table is partitioned by user_id",
                     "user_id is declared as a string attribute", "the index projects only what the query needs"}),
    "15": frozenset({"prod's DR tier is warm_standby",
                     "a scaled-down copy of the API runs in the DR region (at least 1 task behind its own load "
                     "balancer)",
                     "a PRIMARY failover alias record points at the primary region's load balancer, with a health "
                     "check",
                     "a SECONDARY record of the same name points at the DR region's load balancer",
                     "both alias records evaluate target health",
                     "the health check probes the API's /healthz over what the listener serves",
                     "Route 53 calls the primary unhealthy within 60 s, and not on one lost probe",
                     "your RPO answer: more than 0 and at most 5 minutes",
                     "your RTO answer: at least detection plus the alias TTL, at most 15 minutes"}),
}
UNTOUCHED_FAILING["14"] = frozenset({"the messages table's construct is named History (the requested refactor)"})
