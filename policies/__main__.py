"""`pulumi preview --policy-pack policies` runs this: serve BabyBloom's rules to the engine."""

from pulumi_policy import EnforcementLevel, PolicyPack
from refarch.policies.pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
