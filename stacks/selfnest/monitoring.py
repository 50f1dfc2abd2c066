"""selfnest-<env>-monitoring: the environment's dashboard, alarms (to the alarm topic) and monthly budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from refarch.constructs.aws.monitoring import BudgetShape, MonthlyBudget, QueueShape, ServiceMonitoring, Watched

from constructs import Construct

from .config import SelfnestSettings


class MonitoringStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, watched: Sequence[cdk.Stack],
                 alarm_topic: sns.ITopic, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.monitoring = ServiceMonitoring(
            self, "Service", dashboard_name=settings.name("overview"), watched=Watched.in_scopes(watched),
            alarm_topic=alarm_topic,
            queue_shape=QueueShape(visibility_timeout_seconds=settings.messaging.visibility_timeout_seconds),
            initial_storage_gib=settings.database.allocated_storage_gib,
            paging_only=settings.operations.alarms == "paging", dashboard=settings.operations.dashboard,
            services_scale_to_zero=settings.web.min_tasks == 0)
        budget = settings.operations.budget
        self.budget = MonthlyBudget(
            self, "Budget", budget_name=settings.name("monthly-cost"),
            shape=BudgetShape(**budget.model_dump(), cost_tag_value=settings.tags[budget.cost_tag]))
