"""The Selfnest CDK app: the selected environment's stacks, wired together, checked by cdk-nag at synth."""

from __future__ import annotations

import aws_cdk as cdk
from refarch.constructs.aws.deploy_guard import refuse_deploy
from refarch.constructs.aws.nag import add_compliance_checks

from constructs import Construct

from .account import ACCOUNT_STACK_NAME, AccountSettingsStack
from .backup import BackupStack
from .chat import ChatStack
from .config import SelfnestSettings
from .data import DataStack
from .dr import DisasterRecoveryStack
from .identity import IdentityStack
from .keys import KEYS_STACK_ID, KeysStack
from .messaging import MessagingStack
from .monitoring import MonitoringStack
from .network import NetworkStack
from .web import WebStack


class SelfnestEnvironment(Construct):
    """Every stack of one environment: selfnest-<env>-network, -data, -identity, -messaging, -chat, -web, -monitoring,
    -backup, with one key for the environment -keys, and, with a DR region, -dr; plus selfnest-account, which every
    environment shares.

    A plain construct rather than a cdk.Stage: only the selected environment is ever built, and stacks inside a
    Stage are invisible to `cdk deploy --all` / `cdk destroy --all`.
    """

    def __init__(self, scope: cdk.App, *, settings: SelfnestSettings, account: str | None = None) -> None:
        super().__init__(scope, f"selfnest-{settings.environment}")
        if account is not None:
            zones_from_config(self, settings=settings, account=account)

        def stack_args(part: str, region: str = settings.region) -> dict[str, object]:
            return {"stack_name": settings.name(part), "env": cdk.Environment(account=account, region=region),
                    "termination_protection": settings.retain_data,
                    "description": f"Selfnest {settings.environment}: {part} tier"}

        # Outside this environment's construct (no environment tags): dev and prod synthesize the same template.
        self.account_settings = AccountSettingsStack(scope, ACCOUNT_STACK_NAME,
                                                     env=cdk.Environment(account=account, region=settings.region))
        # Before the tiers: with encryption.keys per_environment they all use its key (tier_key finds it).
        self.keys = KeysStack(self, KEYS_STACK_ID, settings=settings, **stack_args("keys")) \
            if settings.encryption.keys == "per_environment" else None
        self.network = NetworkStack(self, "network", settings=settings, **stack_args("network"))
        self.data = DataStack(self, "data", settings=settings, network=self.network, **stack_args("data"))
        self.identity = IdentityStack(self, "identity", settings=settings, **stack_args("identity"))
        self.messaging = MessagingStack(self, "messaging", settings=settings, **stack_args("messaging"))
        self.chat = ChatStack(self, "chat", settings=settings, identity=self.identity, messaging=self.messaging,
                              **stack_args("chat"))
        self.chat.add_stack_dependency(self.account_settings)   # its stage logs only once the role is set
        self.web = WebStack(self, "web", settings=settings, network=self.network, data=self.data,
                            identity=self.identity, messaging=self.messaging, **stack_args("web"))
        # Last in the primary region: it watches what the others built (found in their construct trees).
        self.monitoring = MonitoringStack(
            self, "monitoring", settings=settings, alarm_topic=self.messaging.alarms,
            watched=[self.network, self.data, self.identity, self.messaging, self.chat, self.web],
            **stack_args("monitoring"))
        # The DR-region stack comes before the backup stack (its bucket and vault are the replication and copy
        # targets) and after the data stack (pilot light replicates the database). Both sides build the names they
        # share from settings, except what only the primary region knows and a warm standby's API needs (the user
        # pool's ids, the topic and its key): CDK reads those across regions as weak
        # references (cdk.json @aws-cdk/core:defaultCrossStackReferences: Fn::GetStackOutput with Region), which
        # also orders the DR stack after identity and messaging.
        self.dr: DisasterRecoveryStack | None = None
        if settings.dr.copy_region is not None:
            standby = settings.dr.standby_region is not None
            self.dr = DisasterRecoveryStack(
                self, "dr", settings=settings, identity=self.identity if standby else None,
                messaging=self.messaging if standby else None,
                **stack_args("dr", region=settings.dr.copy_region))
            self.dr.add_stack_dependency(self.data)
            if standby:
                # The standby API signs in as the login the primary's migration creates, on the schema it
                # migrates: the standby service must not start (and roll back) before that has run.
                self.dr.add_stack_dependency(self.web)
        self.backup = BackupStack(self, "backup", settings=settings, **stack_args("backup"))
        if self.dr is not None:
            self.backup.add_stack_dependency(self.dr)
            if settings.dr.replica_regions:   # the chat's global-table replicas use the DR stack's key
                self.chat.add_stack_dependency(self.dr)
        for key, value in settings.tags.items():
            cdk.Tags.of(self).add(key, value)
        # Every stack, so `cdk deploy --all` stops at the first one, before anything is created.
        for stack in [*self.stacks, self.account_settings]:
            refuse_deploy(stack, settings.placeholders())

    @property
    def stacks(self) -> list[cdk.Stack]:
        return [child for child in self.node.children if isinstance(child, cdk.Stack)]


def zones_from_config(scope: Construct, *, settings: SelfnestSettings, account: str) -> None:
    """Answer CDK's availability-zone lookup for each region from config instead of from the account.

    With a concrete account (the CLI passes the caller's as CDK_DEFAULT_ACCOUNT) a VPC checks its zones against the
    region's, which CDK would otherwise look up with AWS calls; config already names the zones (and config
    validation checks they belong to the region), so synth stays offline and needs no cdk.context.json entry.
    Set on this construct before its stacks exist: context is read up the tree from each stack.
    """
    zones = {settings.region: settings.network.availability_zones}
    if settings.dr.region is not None and settings.dr.availability_zones:
        zones[settings.dr.region] = settings.dr.availability_zones
    for region, names in zones.items():
        scope.node.set_context(f"availability-zones:account={account}:region={region}", list(names))


def build_app(settings: SelfnestSettings, *, outdir: str | None = None, context: dict[str, object] | None = None,
              account: str | None = None,
              builtin_validation: bool | None = None) -> tuple[cdk.App, SelfnestEnvironment]:
    """`account`: the AWS account to synthesize for (the CLI's CDK_DEFAULT_ACCOUNT), or None for env-agnostic.
    `builtin_validation=False` skips CDK's built-in template rules (cdk-nag still runs); None: CDK's default, which
    `cdk synth --no-validation` and CDK_VALIDATION=false turn off."""
    app = cdk.App(outdir=outdir, context=context, builtin_cloud_formation_validation=builtin_validation)
    environment = SelfnestEnvironment(app, settings=settings, account=account)
    add_compliance_checks(app)
    return app, environment
