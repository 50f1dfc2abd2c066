"""Exam calculators: DynamoDB capacity units, Cosmos DB request units, subnet sizing, SQS visibility timeouts.

Pure functions with typed signatures; `refarch calc ...` (tools/cli.py) prints them and the lab graders use them to
check a learner's numbers. The rules they encode live where the project enforces them — S3 lifecycle in
`constructs/aws/lifecycle.py`, the SQS 6x rule and the subnet bounds in `stacks/selfnest/config.py` — and are
imported from there, never restated. Every function raises ValueError with a one-line message on bad input.

Sources (the tests cite them with their worked examples):
- DynamoDB: Developer Guide, "DynamoDB read and write operations" / "Read/write capacity mode".
- Cosmos DB: "Request Units in Azure Cosmos DB" and "Optimize request cost in Azure Cosmos DB".
- VPC: "Subnet CIDR blocks" (5 reserved addresses; /16 to /28).
- Lambda: "Configuring an Amazon SQS queue to use with Lambda" (visibility timeout >= 6 x function timeout).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Literal

from refarch.stacks.selfnest.config import SQS_VISIBILITY_PER_CONSUMER_TIMEOUT, SUBNET_PREFIX_RANGE

DynamoReadConsistency = Literal["eventual", "strong", "transactional"]
CosmosConsistency = Literal["strong", "bounded", "session", "prefix", "eventual"]

# DynamoDB: one read capacity unit is one strongly consistent read per second of an item up to 4 KB; one write
# capacity unit is one write per second of an item up to 1 KB. Eventual reads cost half, transactional double.
DYNAMODB_READ_UNIT_KB = 4
DYNAMODB_WRITE_UNIT_KB = 1
DYNAMODB_READ_COST: dict[DynamoReadConsistency, Fraction] = {
    "eventual": Fraction(1, 2), "strong": Fraction(1), "transactional": Fraction(2)}
DYNAMODB_TRANSACTIONAL_WRITE_COST = 2
# The largest item DynamoDB stores, attribute names and values together ("Service quotas": 400 KB).
DYNAMODB_MAX_ITEM_KB = 400

# Cosmos DB: a point read of a 1 KB item is 1 RU and of a 100 KB item 10 RU (the documented anchors: a tenth of an
# RU per KB, never below 1); strong and bounded-staleness reads cost twice as much. Writes are estimated at 5 RU per
# read-equivalent (measured: 4.95 RU for a 1 KB insert with default indexing) — an estimate, never a quote.
COSMOS_READ_RU_PER_KB = Fraction(1, 10)
COSMOS_MINIMUM_READ_RU = Fraction(1)
COSMOS_WRITE_RU_PER_READ_RU = 5
COSMOS_DOUBLE_COST_CONSISTENCIES: frozenset[CosmosConsistency] = frozenset({"strong", "bounded"})

# The largest item Cosmos DB (NoSQL) stores ("Azure Cosmos DB service quotas": 2 MB, UTF-8 JSON).
COSMOS_MAX_ITEM_KB = 2048

# Addresses AWS keeps in every subnet: network, VPC router, DNS, reserved for future use, broadcast.
AWS_RESERVED_ADDRESSES_PER_SUBNET = 5


@dataclass(frozen=True, kw_only=True)
class DynamoCapacity:
    rcu: int
    wcu: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def exact_kb(item_kb: float | str | Fraction) -> Fraction:
    """An item size as an exact fraction (so 4.0 KB is one 4 KB unit, not 1.0000000001), refusing nonsense."""
    try:
        size = Fraction(str(item_kb))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"item size {item_kb!r} is not a number of KB") from None
    if size <= 0:
        raise ValueError(f"item size must be more than 0 KB (got {item_kb})")
    return size


def _rate(name: str, value: int) -> int:
    if value < 0:
        raise ValueError(f"{name} must be 0 or more per second (got {value})")
    return value


def dynamodb_capacity(*, item_kb: float | str, reads_per_second: int = 0, writes_per_second: int = 0,
                      consistency: DynamoReadConsistency = "eventual",
                      transactional_writes: bool = False) -> DynamoCapacity:
    """Provisioned capacity for a steady load: each item rounded up to 4 KB (reads) or 1 KB (writes) separately."""
    size = exact_kb(item_kb)
    if size > DYNAMODB_MAX_ITEM_KB:
        raise ValueError(f"a DynamoDB item is at most {DYNAMODB_MAX_ITEM_KB} KB (got {item_kb} KB): store the "
                         f"payload in S3 and keep its key in the item")
    if consistency not in DYNAMODB_READ_COST:
        raise ValueError(f"consistency {consistency!r} is not one of {', '.join(DYNAMODB_READ_COST)}")
    read_units = math.ceil(size / DYNAMODB_READ_UNIT_KB) * DYNAMODB_READ_COST[consistency]
    write_units = math.ceil(size / DYNAMODB_WRITE_UNIT_KB) * (
        DYNAMODB_TRANSACTIONAL_WRITE_COST if transactional_writes else 1)
    return DynamoCapacity(rcu=math.ceil(read_units * _rate("reads", reads_per_second)),
                          wcu=math.ceil(write_units * _rate("writes", writes_per_second)))


def cosmos_read_ru(item_kb: float | str, consistency: CosmosConsistency = "session") -> Fraction:
    """Estimated RU of one point read (id + partition key)."""
    if exact_kb(item_kb) > COSMOS_MAX_ITEM_KB:
        raise ValueError(f"a Cosmos DB item is at most {COSMOS_MAX_ITEM_KB // 1024} MB (got {item_kb} KB)")
    if consistency not in {"strong", "bounded", "session", "prefix", "eventual"}:
        raise ValueError(f"consistency {consistency!r} is not one of strong, bounded, session, prefix, eventual")
    base = max(COSMOS_MINIMUM_READ_RU, exact_kb(item_kb) * COSMOS_READ_RU_PER_KB)
    return base * (2 if consistency in COSMOS_DOUBLE_COST_CONSISTENCIES else 1)


def cosmos_ru_per_second(*, item_kb: float | str, reads_per_second: int = 0, writes_per_second: int = 0,
                         consistency: CosmosConsistency = "session") -> float:
    """Estimated RU/s for point reads and single-item writes; round provisioned throughput up from this."""
    reads = cosmos_read_ru(item_kb, consistency) * _rate("reads", reads_per_second)
    writes = cosmos_read_ru(item_kb) * COSMOS_WRITE_RU_PER_READ_RU * _rate("writes", writes_per_second)
    return math.ceil((reads + writes) * 100) / 100


def _check_prefix(prefix: int) -> int:
    low, high = SUBNET_PREFIX_RANGE
    if not low <= prefix <= high:
        raise ValueError(f"a subnet's prefix must be from /{low} to /{high} (got /{prefix})")
    return prefix


def usable_hosts(prefix: int) -> int:
    """Addresses you can assign in an AWS subnet of this size: 2^(32-prefix) minus the 5 AWS reserves."""
    return int(2 ** (32 - _check_prefix(prefix))) - AWS_RESERVED_ADDRESSES_PER_SUBNET


def usable_hosts_in(cidr: str) -> int:
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError as error:
        raise ValueError(f"{cidr!r} is not an IPv4 network such as 10.0.1.0/24 ({error})") from None
    return usable_hosts(network.prefixlen)


def prefix_for_hosts(hosts: int) -> int:
    """The smallest AWS subnet (largest prefix number) with at least `hosts` usable addresses."""
    low, high = SUBNET_PREFIX_RANGE
    if hosts < 1:
        raise ValueError(f"hosts must be at least 1 (got {hosts})")
    for prefix in range(high, low - 1, -1):
        if usable_hosts(prefix) >= hosts:
            return prefix
    raise ValueError(f"{hosts} hosts do not fit one subnet: the largest, /{low}, has {usable_hosts(low)} usable "
                     f"addresses")


def min_visibility_timeout(lambda_timeout_seconds: int) -> int:
    """The shortest SQS visibility timeout AWS recommends for a queue feeding a function with this timeout."""
    if not 1 <= lambda_timeout_seconds <= 900:
        raise ValueError(f"a Lambda timeout is 1 to 900 seconds (got {lambda_timeout_seconds})")
    return SQS_VISIBILITY_PER_CONSUMER_TIMEOUT * lambda_timeout_seconds
