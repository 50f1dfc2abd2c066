"""Lab 09 — Cosmos DB partition keys, consistency levels and request units: a kick-counter container."""

from __future__ import annotations

import math
from pathlib import Path

from refarch.stacks.babybloom import offline
from refarch.tools.calculators import cosmos_ru_per_second

from .grading import Check, check

COSMOS = "azure-native:cosmosdb:DatabaseAccount"
DATABASE = "azure-native:cosmosdb:SqlResourceSqlDatabase"
CONTAINER = "azure-native:cosmosdb:SqlResourceSqlContainer"
NEW_CONTAINER = "kick_counts"
GOOD_KEY = "/userId"
# Expected prod peak: 2,000 point reads/s and 500 writes/s of 1 KB items, Session consistency.
PEAK_RU = cosmos_ru_per_second(item_kb=1, reads_per_second=2000, writes_per_second=500, consistency="session")
AUTOSCALE_STEP = 1000   # autoscale maximums are multiples of 1,000 RU/s


def grade(root: Path) -> list[Check]:
    resources = offline.plan("prod", root)
    containers = {item.inputs["containerName"]: item.inputs["resource"]["partitionKey"]
                  for item in resources if item.type == CONTAINER}
    [account] = [item.inputs for item in resources if item.type == COSMOS]
    [database] = [item.inputs for item in resources if item.type == DATABASE]
    autoscale = database.get("options", {}).get("autoscaleSettings", {}).get("maxThroughput")
    wanted = math.ceil(PEAK_RU / AUTOSCALE_STEP) * AUTOSCALE_STEP
    consistency = account["consistencyPolicy"]["defaultConsistencyLevel"]
    new_key = containers.get(NEW_CONTAINER, {})
    keys = {name: f"{key.get('kind')} v{key.get('version')} {key.get('paths')}" for name, key in containers.items()}
    return [
        check(f"a `{NEW_CONTAINER}` container exists", NEW_CONTAINER in containers,
              "add a ContainerSpec to CONTAINERS in stacks/babybloom/program.py.", found=", ".join(containers)),
        # A hierarchical key that starts with /userId (MultiHash: /userId, then /date) is as good: queries by user
        # still target one partition prefix, and a heavy user can grow past 20 GB.
        check(f"`{NEW_CONTAINER}` keeps each user's counts in one logical partition and spreads users' writes",
              (new_key.get("paths") or [None])[0] == GOOD_KEY,
              "each user writes many small counts a day and reads only her own: /userId has high cardinality and "
              "keeps every query in one logical partition (<= 20 GB each). /date would put every user's writes of a "
              "day in one hot partition; /id would make every history query cross-partition.",
              found=keys.get(NEW_CONTAINER, "no such container")),
        check("every container uses hash partitioning v2 (large keys)",
              all(key.get("kind") in {"Hash", "MultiHash"} and key.get("version") == 2 for key in containers.values()),
              "v2 hashes partition-key values longer than 100 bytes correctly (hierarchical keys require it).",
              found="; ".join(f"{name}: {key}" for name, key in keys.items())),
        check("the account keeps Session consistency", consistency == "Session",
              "Session gives each user read-your-writes at the RU cost of eventual; strong and bounded staleness "
              "double every read's RUs.", found=consistency),
        check("prod's autoscale maximum covers the peak (2,000 point reads/s and 500 writes/s of 1 KB)",
              isinstance(autoscale, int) and autoscale >= wanted and autoscale % AUTOSCALE_STEP == 0,
              f"`refarch calc cosmos --item-kb 1 --reads 2000 --writes 500` -> {PEAK_RU:g} RU/s; round up to a "
              "multiple of 1,000 (babybloom:cosmos.autoscaleMaxThroughput in Pulumi.prod.yaml). Autoscale bills "
              "the hour's peak, at least 10 % of the maximum — more headroom is safe but dearer.",
              found=f"autoscale maximum {autoscale} RU/s; the peak needs about {PEAK_RU:g} RU/s"),
    ]

