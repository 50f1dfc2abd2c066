"""Log Analytics workspace and a workspace-based Application Insights that accepts only Entra ID-authenticated data."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import applicationinsights, operationalinsights

from .common import Placement


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    placement: Placement
    workspace_name: str
    insights_name: str
    retention_days: int
    daily_cap_gb: float | None


class Observability(pulumi.ComponentResource):
    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("refarch:azure:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        place = args.placement
        self.workspace = operationalinsights.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.retention_days,
            # A daily cap is how a learner's subscription is protected from a runaway log bill.
            workspace_capping=(
                operationalinsights.WorkspaceCappingArgs(daily_quota_gb=args.daily_cap_gb)
                if args.daily_cap_gb is not None
                else None
            ),
            tags=dict(place.tags),
            opts=child,
        )
        self.insights = applicationinsights.Component(
            f"{name}-insights",
            resource_name_=args.insights_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind="web",
            application_type="web",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=self.workspace.id,
            # Instrumentation-key ingestion off: the function app must present an Entra token (its identity).
            disable_local_auth=True,
            tags=dict(place.tags),
            opts=child,
        )
        self.connection_string = self.insights.connection_string
        self.register_outputs({"workspace_id": self.workspace.id, "insights_id": self.insights.id})
