"""selfnest-<env>-chat: the real-time session chat and the consumer that tells it which sessions are booked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from refarch.constructs.aws.backup import select_for_backup
from refarch.constructs.aws.chat import ChatShape, ChatTables, SessionChat
from refarch.constructs.aws.functions import BundledPythonFunction, FunctionShape
from refarch.constructs.aws.messaging import TopicConsumer
from refarch.constructs.aws.nag import acknowledge
from refarch.constructs.aws.tables import DYNAMODB_CMK_ACTIONS, Throughput

from constructs import Construct

from .backup import backup_plan_name
from .config import SelfnestSettings
from .dr import chat_replicas
from .identity import IdentityStack
from .keys import tier_key
from .messaging import EVENT_TYPE_ATTRIBUTE, MessagingStack

SERVICES = Path(__file__).resolve().parents[2] / "services"
CHAT_DIRECTORY = SERVICES / "selfnest_chat"
# Shared code packaged into the chat asset from its one place: the booking API's token verifier (authorizer), the
# session-event parser and the consumer helpers (sessions consumer).
SHARED_MODULES = (SERVICES / "selfnest_api" / "selfnest_api", SERVICES / "selfnest_events" / "consumer.py",
                  SERVICES / "selfnest_events" / "session_events.py")
# Bookings open a session's chat, cancellations close it; nothing else about a session concerns the chat.
CHAT_EVENT_TYPES = ["session.booked", "session.cancelled"]


class ChatStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, settings: SelfnestSettings, identity: IdentityStack,
                 messaging: MessagingStack, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        chat, events, retain = settings.chat, settings.messaging, settings.retain_data
        key = tier_key(self, "Key", settings=settings, alias=f"alias/{settings.name('chat')}",
                       purpose="Selfnest chat tables, session-event queue, function settings and logs",
                       for_cloudwatch_logs=True)
        self.tables = ChatTables(
            self, "Tables", name_prefix=settings.name("chat"), key=key, retain_data=retain,
            replicas=chat_replicas(settings),
            provisioned={table: Throughput(**capacity.model_dump())
                         for table, capacity in chat.provisioned_tables.items()})
        # History and the sessions it belongs to are restorable; connections and applied-event ids are transient.
        for table in (self.tables.messages, self.tables.sessions):
            select_for_backup(table, plan_name=backup_plan_name(settings))
        acknowledge(self.tables.connections, {
            "HIPAA.Security-DynamoDBInBackupPlan": "Live WebSocket connection ids: useless after an outage (clients "
                                                   "reconnect), so a restore would only point at dead sockets."})
        directory = identity.directory
        self.chat = SessionChat(
            self, "Chat", api_name=settings.name("chat"), source=CHAT_DIRECTORY, include=SHARED_MODULES,
            shape=ChatShape(stage_name=settings.environment, **chat.model_dump(exclude={"provisioned_tables"})),
            user_pool_id=directory.pool.user_pool_id, user_pool_client_ids=directory.api_client_ids,
            tables=self.tables, key=key, retain_data=retain)

        sessions_consumer = BundledPythonFunction(
            self, "SessionsConsumer", source=CHAT_DIRECTORY, include=SHARED_MODULES, logs_key=key,
            retain_data=retain, shape=FunctionShape(
                handler="sessions.handler", description="Selfnest chat: booked and cancelled sessions",
                timeout_seconds=events.consumer_timeout_seconds, log_retention_days=chat.log_retention_days,
                environment={"SESSIONS_TABLE": self.tables.sessions.table_name,
                             "IDEMPOTENCY_TABLE": self.tables.idempotency.table.table_name,
                             "MESSAGE_RETENTION_DAYS": str(chat.message_retention_days)}))
        self.tables.sessions.grant(sessions_consumer.role, "dynamodb:UpdateItem")
        self.tables.idempotency.grant_records(sessions_consumer.role)
        key.grant(sessions_consumer.role, *DYNAMODB_CMK_ACTIONS)
        TopicConsumer(self, "SessionEvents", topic=messaging.session_events, function=sessions_consumer.function,
                      filter_policy={EVENT_TYPE_ATTRIBUTE: sns.SubscriptionFilter.string_filter(
                          allowlist=CHAT_EVENT_TYPES)},
                      queue_name=settings.name("chat-sessions"), key=key,
                      visibility_timeout_seconds=events.visibility_timeout_seconds,
                      max_receive_count=events.max_receive_count, batch_size=events.batch_size,
                      dead_letter_retention_days=events.dead_letter_retention_days, alarm_topic=messaging.alarms,
                      retain_data=retain)
