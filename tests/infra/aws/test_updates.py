"""Every config change a user is invited to make (DR tier, each lab's knob) updates a deployed environment in place:
no stateful resource changes type, moves to another logical ID, changes a property that replaces it, or is deleted
with its data. Each supported variant is synthesized once (for an account, as `cdk deploy` does), reused across runs
while none of its inputs changed, and every pair of the same environment is compared both ways, in process.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
from refarch.tools.update_safety import STATEFUL_TYPES, kept_types, replacing_properties, update_problems

from tests.run_cache import RunCache

from .assembly import SYNTH_CACHE, Assembly, cached_synthesis
from .assembly import VARIANTS as SHARED_VARIANTS
from .conftest import DEPLOYER_ACCOUNT
from .updates import Variant, lab_knobs, supported_variants, variant_settings

VARIANTS = supported_variants()
# A label only these tests use names one config, so it keeps one entry (older ones would only serve a checkout
# switched back to). Same folder and labels as the shared variants, so a variant both use (prod's pilot light) is
# synthesized once; such a label keeps the shared cache's room (the labs' answers and copies use it too).
UPDATE_ONLY_CACHE = RunCache(SYNTH_CACHE.kind, root=SYNTH_CACHE.root, keep_per_label=1)
PAIRS = [(before, after) for first, second in itertools.combinations(VARIANTS, 2)
         if first.environment == second.environment for before, after in ((first, second), (second, first))]


class VariantAssemblies:
    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._built: dict[Variant, Assembly] = {}

    def __getitem__(self, variant: Variant) -> Assembly:
        if variant not in self._built:
            label = variant.name.replace(":", "-").replace("+", "-")
            settings = variant_settings(variant, Path(self._tmp.mktemp(f"update-{label}")) / "config")
            self._built[variant] = cached_synthesis(
                settings, label=label, account=DEPLOYER_ACCOUNT,
                cache=SYNTH_CACHE if label in SHARED_VARIANTS else UPDATE_ONLY_CACHE)
        return self._built[variant]


@pytest.fixture(scope="session")
def variant_assemblies(tmp_path_factory: pytest.TempPathFactory) -> VariantAssemblies:
    return VariantAssemblies(tmp_path_factory)


def test_variants_cover_every_tier_and_every_config_lab() -> None:
    tiers = {(variant.environment, variant.tier) for variant in VARIANTS}
    assert ("prod", "backup_restore") in tiers and ("prod", "pilot_light") in tiers
    knobs = {variant.knob for variant in VARIANTS} - {None}
    # A knob may coincide with a tier (lab 08 switches prod to pilot light); every other lab knob is a variant.
    assert knobs and knobs <= set(lab_knobs())
    assert PAIRS


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)
def test_every_variant_passes_the_gates_offline(variant: Variant, variant_assemblies: VariantAssemblies) -> None:
    assembly = variant_assemblies[variant]
    assert [f"{f.rule} at {f.path}" for f in assembly.findings] == []
    assert assembly.missing_context == []


@pytest.mark.parametrize(("before", "after"), PAIRS, ids=lambda variant: variant.name)
def test_switching_variants_updates_stateful_resources_in_place(before: Variant, after: Variant,
                                                                variant_assemblies: VariantAssemblies) -> None:
    deployed, next_deploy = variant_assemblies[before], variant_assemblies[after]
    assert update_problems(deployed.templates, next_deploy.templates, regions=deployed.regions,
                           retain_data=deployed.settings.retain_data) == []


def test_every_type_the_constructs_retain_is_checked_or_holds_no_data(
        variant_assemblies: VariantAssemblies) -> None:
    """What the constructs keep on deletion is data, unless it is kept for another reason: the account-wide API
    Gateway logging role and setting (other workloads keep logging), the database's subnet group (CDK keeps it with
    the instance it describes). A newly retained data store must join STATEFUL_TYPES."""
    kept = kept_types([template for variant in VARIANTS for template in variant_assemblies[variant]
                       .templates.values()])
    assert kept - STATEFUL_TYPES <= {"AWS::IAM::Role", "AWS::ApiGateway::Account", "AWS::RDS::DBSubnetGroup"}
    assert {"AWS::RDS::DBInstance", "AWS::DynamoDB::GlobalTable", "AWS::S3::Bucket", "AWS::KMS::Key",
            "AWS::Logs::LogGroup"} <= kept


def test_the_checker_reports_each_kind_of_unsafe_change(variant_assemblies: VariantAssemblies) -> None:
    """Tamper with a real template: a type change, a replacing property, a move and a deletion are each caught."""
    deployed = variant_assemblies[Variant("prod", "backup_restore", None)]
    templates, regions = deployed.templates, deployed.regions
    [(table_id, table)] = [(logical_id, resource) for logical_id, resource in templates["chat"]["Resources"].items()
                           if resource["Properties"].get("TableName") == deployed.settings.name("chat-messages")]
    [(database_id, _)] = deployed.resources("data", "AWS::RDS::DBInstance").items()
    assert "/properties/DBInstanceIdentifier" in replacing_properties(regions["data"], "AWS::RDS::DBInstance")

    def tampered(edit: str) -> list[str]:
        after = copy.deepcopy(templates)
        chat, data = after["chat"]["Resources"], after["data"]["Resources"]
        if edit == "type":
            chat[table_id]["Type"] = "AWS::DynamoDB::Table"
        elif edit == "property":
            data[database_id]["Properties"]["DBInstanceIdentifier"] = "renamed"
        elif edit == "move":
            chat[f"{table_id}Moved"] = chat.pop(table_id)
        elif edit == "delete":
            chat.pop(table_id)
            templates_before = copy.deepcopy(templates)
            templates_before["chat"]["Resources"][table_id]["DeletionPolicy"] = "Delete"
            return update_problems(templates_before, after, regions=regions, retain_data=True)
        return update_problems(templates, after, regions=regions, retain_data=True)

    assert "becomes AWS::DynamoDB::Table" in " ".join(tampered("type"))
    assert "changes DBInstanceIdentifier" in " ".join(tampered("property"))
    assert f"moves to {table_id}Moved" in " ".join(tampered("move"))
    assert "deleted with its data" in " ".join(tampered("delete"))
    assert table["Type"] == "AWS::DynamoDB::GlobalTable"
    assert update_problems(templates, copy.deepcopy(templates), regions=regions, retain_data=True) == []
