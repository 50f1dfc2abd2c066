"""selfnest-<env>-messaging: session events fanned out to the notification and audit consumers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from refarch.constructs.aws.backup import select_for_backup
from refarch.constructs.aws.functions import BundledPythonFunction, FunctionShape
from refarch.constructs.aws.messaging import EncryptedTopic, TopicConsumer
from refarch.constructs.aws.tables import DYNAMODB_CMK_ACTIONS, EncryptedTable, IdempotencyTable, Throughput

from constructs import Construct

from .backup import backup_plan_name
from .config import ConsumerTable, SelfnestSettings
from .keys import tier_key

SERVICES = Path(__file__).resolve().parents[2] / "services"
CONSUMERS_DIRECTORY = SERVICES / "selfnest_events"
# The booking API's package, for its correlation-id rule (selfnest_api/correlation.py): the API and the consumers
# agree on what a well-formed id is from one piece of code.
CONSUMER_SHARED_MODULES = (SERVICES / "selfnest_api" / "selfnest_api",)
EVENT_TYPE_ATTRIBUTE = "event_type"
NOTIFIED_EVENT_TYPES = ["session.booked", "session.cancelled"]
AUDITED_EVENT_PREFIX = "session."


class MessagingStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        messaging, retain = settings.messaging, settings.retain_data
        # Two keys: the queues' key policy names the topic (SNS delivers into them), so the topic cannot use it.
        # (One environment key serves both: its policy names the topics by name, so it forms no cycle.)
        self.topic_key = tier_key(
            self, "TopicKey", settings=settings, alias=f"alias/{settings.name('events-topics')}",
            purpose="Selfnest session-event and alarm topics")
        key = tier_key(
            self, "Key", settings=settings, alias=f"alias/{settings.name('events-consumers')}",
            purpose="Selfnest session-event queues, consumer tables and logs", for_cloudwatch_logs=True)
        self.session_events = EncryptedTopic(self, "SessionEvents", topic_name=settings.name("session-events"),
                                             key=self.topic_key).topic
        alarms = EncryptedTopic(self, "Alarms", topic_name=settings.name("alarms"), key=self.topic_key)
        alarms.accept_alarms(email=settings.operations.alarm_email)
        self.alarms = alarms.topic

        idempotency = IdempotencyTable(self, "Idempotency", table_name=settings.name("event-idempotency"), key=key,
                                       retain_data=retain)

        def throughput(table: ConsumerTable) -> Throughput | None:
            capacity = messaging.provisioned_tables.get(table)
            return None if capacity is None else Throughput(**capacity.model_dump())

        inbox = EncryptedTable(self, "Inbox", table_name=settings.name("inbox"), partition_key="recipient_id",
                               sort_key="notification_id", key=key, expiry_attribute="expires_at",
                               retain_data=retain, provisioned=throughput("inbox")).table
        audit_trail = EncryptedTable(self, "AuditTrail", table_name=settings.name("audit"),
                                     partition_key="session_id", sort_key="event_key", key=key,
                                     expiry_attribute=None, retain_data=retain, provisioned=throughput("audit")).table

        def consumer(id: str, *, handler: str, description: str, environment: dict[str, str]) -> BundledPythonFunction:
            function = BundledPythonFunction(self, id, source=CONSUMERS_DIRECTORY, logs_key=key, retain_data=retain,
                                             include=CONSUMER_SHARED_MODULES,
                                             shape=FunctionShape(
                                                 handler=handler, description=description,
                                                 timeout_seconds=messaging.consumer_timeout_seconds,
                                                 log_retention_days=messaging.log_retention_days,
                                                 environment={"IDEMPOTENCY_TABLE": idempotency.table.table_name,
                                                              **environment}))
            idempotency.grant_records(function.role)
            return function

        for table in (inbox, audit_trail):
            select_for_backup(table, plan_name=backup_plan_name(settings))

        notifier = consumer("NotificationsConsumer", handler="notifications.handler",
                            description="Selfnest: session events into participants' in-app inboxes",
                            environment={"INBOX_TABLE": inbox.table_name,
                                         "NOTIFICATION_RETENTION_DAYS": str(messaging.notification_retention_days)})
        inbox.grant(notifier.role, "dynamodb:PutItem")
        auditor = consumer("AuditConsumer", handler="audit.handler",
                           description="Selfnest: session events into the append-only audit trail",
                           environment={"AUDIT_TABLE": audit_trail.table_name})
        audit_trail.grant(auditor.role, "dynamodb:PutItem")
        for function in (notifier, auditor):
            key.grant(function.role, *DYNAMODB_CMK_ACTIONS)

        for id, function, filter_policy in (
            ("Notifications", notifier, {EVENT_TYPE_ATTRIBUTE: sns.SubscriptionFilter.string_filter(
                allowlist=NOTIFIED_EVENT_TYPES)}),
            ("Audit", auditor, {EVENT_TYPE_ATTRIBUTE: sns.SubscriptionFilter.string_filter(
                match_prefixes=[AUDITED_EVENT_PREFIX])}),
        ):
            TopicConsumer(self, id, topic=self.session_events, filter_policy=filter_policy,
                          function=function.function, queue_name=settings.name(id.lower()), key=key,
                          visibility_timeout_seconds=messaging.visibility_timeout_seconds,
                          max_receive_count=messaging.max_receive_count, batch_size=messaging.batch_size,
                          dead_letter_retention_days=messaging.dead_letter_retention_days, alarm_topic=self.alarms,
                          retain_data=retain)
