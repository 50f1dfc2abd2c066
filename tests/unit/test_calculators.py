"""The exam calculators against the worked examples of the AWS and Microsoft documentation, and `refarch calc`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from refarch.tools import calculators, cli

from tests.entry_points import run_main

ROOT = Path(__file__).resolve().parents[2]
REFARCH = ROOT / ".venv" / "bin" / "refarch"


# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
# "an 8 KB item: 2 read capacity units for a strongly consistent read, 1 for an eventually consistent read, 4 for a
# transactional read"; "a 2 KB item: 2 write capacity units, 4 for a transactional write".
@pytest.mark.parametrize(("consistency", "rcu"), [("strong", 2), ("eventual", 1), ("transactional", 4)])
def test_dynamodb_reads_of_an_8_kb_item(consistency: calculators.DynamoReadConsistency, rcu: int) -> None:
    assert calculators.dynamodb_capacity(item_kb=8, reads_per_second=1, writes_per_second=0,
                                         consistency=consistency).rcu == rcu


@pytest.mark.parametrize(("transactional", "wcu"), [(False, 2), (True, 4)])
def test_dynamodb_writes_of_a_2_kb_item(transactional: bool, wcu: int) -> None:
    assert calculators.dynamodb_capacity(item_kb=2, reads_per_second=0, writes_per_second=1,
                                         transactional_writes=transactional).wcu == wcu


# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadWriteCapacityMode.html
# "6 RCU and 6 WCU: strongly consistent reads of up to 24 KB per second (4 KB x 6), eventually consistent reads of up
# to 48 KB per second, transactional reads of up to 12 KB per second; writes of up to 6 KB per second (1 KB x 6),
# transactional writes of up to 3 KB per second."
@pytest.mark.parametrize(("reads", "consistency"), [(6, "strong"), (12, "eventual"), (3, "transactional")])
def test_six_rcu_serve_the_documented_read_rates(reads: int, consistency: calculators.DynamoReadConsistency) -> None:
    assert calculators.dynamodb_capacity(item_kb=4, reads_per_second=reads, writes_per_second=0,
                                         consistency=consistency).rcu == 6


@pytest.mark.parametrize(("writes", "transactional"), [(6, False), (3, True)])
def test_six_wcu_serve_the_documented_write_rates(writes: int, transactional: bool) -> None:
    assert calculators.dynamodb_capacity(item_kb=1, reads_per_second=0, writes_per_second=writes,
                                         transactional_writes=transactional).wcu == 6


def test_dynamodb_rounds_each_item_up_not_the_total() -> None:
    # 4.5 KB is two 4 KB read units and five 1 KB write units per item, however many items there are.
    assert calculators.dynamodb_capacity(item_kb="4.5", reads_per_second=10, writes_per_second=10,
                                         consistency="strong").as_dict() == {"rcu": 20, "wcu": 50}
    # Exact sizes stay exact: 4.0 KB is one unit, not two.
    assert calculators.dynamodb_capacity(item_kb="4.0", reads_per_second=1, writes_per_second=0,
                                         consistency="strong").rcu == 1
    # Half an RCU per eventual read still rounds up to whole units for the table.
    assert calculators.dynamodb_capacity(item_kb=1, reads_per_second=3, writes_per_second=0).rcu == 2


# https://learn.microsoft.com/azure/cosmos-db/request-units: "a point read ... for a 1-KB item is one Request Unit".
# https://learn.microsoft.com/azure/cosmos-db/optimize-cost-reads-writes: point reads of 1 KB = 1 RU, 100 KB = 10 RU;
# "the RU cost of any read operation is doubled" with strong or bounded-staleness consistency.
@pytest.mark.parametrize(("item_kb", "consistency", "ru"), [
    (1, "session", 1), (100, "session", 10), (1, "strong", 2), (100, "bounded", 20), (1, "eventual", 1),
    (1, "prefix", 1),
])
def test_cosmos_point_reads(item_kb: int, consistency: calculators.CosmosConsistency, ru: float) -> None:
    assert calculators.cosmos_ru_per_second(item_kb=item_kb, reads_per_second=1, writes_per_second=0,
                                            consistency=consistency) == ru


def test_cosmos_writes_are_estimated_at_about_five_ru_per_kb_item() -> None:
    # optimize-cost-reads-writes measures 4.95 RU for inserting a 1 KB item with default indexing.
    assert calculators.cosmos_ru_per_second(item_kb=1, reads_per_second=0, writes_per_second=1) == pytest.approx(
        4.95, abs=0.1)
    # A mixed load adds up: 2000 session reads and 500 writes of 1 KB items.
    assert calculators.cosmos_ru_per_second(item_kb=1, reads_per_second=2000, writes_per_second=500) == 4500


# https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html: "The first four IP addresses and the last IP
# address in each subnet CIDR block are not available"; block sizes from /16 to /28.
@pytest.mark.parametrize(("cidr", "usable"), [("10.0.0.0/24", 251), ("10.0.0.0/28", 11), ("10.0.0.0/16", 65531)])
def test_usable_hosts(cidr: str, usable: int) -> None:
    assert calculators.usable_hosts_in(cidr) == usable


@pytest.mark.parametrize(("hosts", "prefix"), [(29, 26), (1, 28), (11, 28), (12, 27), (251, 24), (252, 23),
                                               (65531, 16)])
def test_smallest_prefix_for_hosts(hosts: int, prefix: int) -> None:
    assert calculators.prefix_for_hosts(hosts) == prefix


# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html: "set the source queue's visibility timeout
# to at least six times the timeout that you configure on your function".
def test_sqs_visibility_is_six_times_the_function_timeout() -> None:
    assert calculators.min_visibility_timeout(30) == 180
    assert calculators.min_visibility_timeout(900) == 5400


def refarch(*args: str) -> subprocess.CompletedProcess[str]:
    """`refarch calc ARGS`, in-process (test_the_console_script_runs_as_a_process starts the real one)."""
    return run_main(cli.main, ["calc", *args])


def test_the_console_script_runs_as_a_process() -> None:
    result = subprocess.run([str(REFARCH), "calc", "sqs", "--lambda-timeout", "30", "--json"], capture_output=True,
                            text=True, check=False, timeout=60)
    assert (result.returncode, json.loads(result.stdout), result.stderr) == (0, {"min_visibility_timeout": 180}, "")
    bad = subprocess.run([str(REFARCH), "calc", "sqs"], capture_output=True, text=True, check=False, timeout=60)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.count("\n") == 1 and "required: --lambda-timeout" in bad.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["dynamodb", "--item-kb", "8", "--reads", "1", "--writes", "1", "--consistency", "strong"],
     {"rcu": 2, "wcu": 8}),
    (["dynamodb", "--item-kb", "2", "--reads", "0", "--writes", "1", "--transactional-writes"], {"rcu": 0, "wcu": 4}),
    (["cosmos", "--item-kb", "100", "--reads", "1", "--writes", "0", "--consistency", "strong"],
     {"ru_per_second": 20}),
    # A reads-only (or writes-only) question needs no zero for the other side.
    (["dynamodb", "--item-kb", "6", "--reads", "25", "--consistency", "strong"], {"rcu": 50, "wcu": 0}),
    (["dynamodb", "--item-kb", "400", "--writes", "1"], {"rcu": 0, "wcu": 400}),
    (["subnet", "--cidr", "10.0.0.0/24"], {"usable_hosts": 251}),
    (["subnet", "--hosts", "29"], {"prefix": 26}),
    (["lifecycle", "--transition", "STANDARD_IA:30", "--transition", "GLACIER:60", "--expire", "365"],
     {"valid": True, "problems": []}),
    (["sqs", "--lambda-timeout", "30"], {"min_visibility_timeout": 180}),
])
def test_console_script_prints_json(args: list[str], expected: dict[str, object]) -> None:
    result = refarch(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_lifecycle_reports_every_broken_minimum_and_exits_1() -> None:
    result = refarch("lifecycle", "--transition", "STANDARD_IA:10", "--transition", "GLACIER_IR:40",
                     "--expire", "60", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert any("at least 30 days old" in problem for problem in report["problems"])
    assert any("expire at day 130 or later" in problem for problem in report["problems"])


@pytest.mark.parametrize(("args", "message"), [
    (["subnet", "--cidr", "10.0.0.0/29"], "prefix must be from /16 to /28 (got /29)"),
    (["subnet", "--cidr", "10.0.0.300/24"], "is not an IPv4 network"),
    (["subnet", "--hosts", "70000"], "do not fit one subnet"),
    (["subnet"], "give exactly one of --cidr CIDR or --hosts N"),
    (["dynamodb", "--item-kb", "0", "--reads", "1", "--writes", "1"], "item size must be more than 0 KB"),
    (["dynamodb", "--item-kb", "big", "--reads", "1", "--writes", "1"], "is not a number of KB"),
    (["dynamodb", "--item-kb", "1", "--reads", "-3", "--writes", "1"], "expected a whole number"),
    (["cosmos", "--item-kb", "1", "--reads", "1", "--writes", "1", "--consistency", "linear"], "invalid choice"),
    (["lifecycle", "--transition", "GLACIER_IR"], "is not CLASS:DAYS"),
    (["lifecycle", "--transition", "TAPE:30"], "is not a lifecycle storage class"),
    (["dynamodb", "--item-kb", "400.5", "--reads", "1"], "a DynamoDB item is at most 400 KB (got 400.5 KB)"),
    (["dynamodb", "--item-kb", "4"], "give --reads N, --writes N or both"),
    (["cosmos", "--item-kb", "2049", "--reads", "1"], "a Cosmos DB item is at most 2 MB"),
    (["sqs", "--lambda-timeout", "901"], "a Lambda timeout is 1 to 900 seconds"),
    (["sqs"], "required: --lambda-timeout"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = refarch(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert message in result.stderr
