"""Event fan-out: an encrypted, TLS-only SNS topic and SQS consumers with dead-letter queues and alarms."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs

from constructs import Construct

from .encryption import removal_policy

# Lambda scales SQS pollers up to this many concurrent batches per queue; a small ceiling keeps a burst of events
# from exhausting a new account's concurrency (10) that the chat and identity functions also need.
MAX_CONCURRENT_BATCHES = 2


class EncryptedTopic(Construct):
    """An SNS topic encrypted with a customer-managed key that only accepts TLS requests.

    The key must also let SNS deliver into queues encrypted with it; `accept_alarms` makes the topic a target for
    this account's CloudWatch alarms.
    """

    def __init__(self, scope: Construct, id: str, *, topic_name: str, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.key = key
        self.topic = sns.Topic(self, "Topic", topic_name=topic_name, master_key=key, enforce_ssl=True)

    def accept_alarms(self, *, email: str) -> None:
        """Let CloudWatch alarms of this account and region publish here, and email every message to `email`.

        `enforce_ssl` writes a topic policy, and a topic policy replaces SNS's default one: without an explicit
        statement CloudWatch may not publish. An encrypted topic also needs CloudWatch on the key, or alarm
        notifications are dropped without any error.
        """
        stack = cdk.Stack.of(self)
        from_this_account_alarms = {
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm", resource_name="*",
                                                          arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)},
            "StringEquals": {"aws:SourceAccount": stack.account},
        }
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions=from_this_account_alarms,
        ))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid=f"CloudWatchAlarmsPublishTo{self.node.id}",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy "*" means this key
            conditions=from_this_account_alarms,
        ))
        self.topic.add_subscription(subscriptions.EmailSubscription(email))


class TopicConsumer(Construct):
    """A queue subscribed to `topic` through `filter_policy`, drained in batches by `function`.

    Messages a consumer fails `max_receive_count` times move to a dead-letter queue, which raises an alarm as soon
    as it holds anything. The consumer reports failures per message (partial batch responses), so one poison
    message never makes its batch-mates run again.
    """

    def __init__(self, scope: Construct, id: str, *, topic: sns.ITopic,
                 filter_policy: Mapping[str, sns.SubscriptionFilter], function: lambda_.IFunction,
                 queue_name: str, key: kms.IKey, visibility_timeout_seconds: int, max_receive_count: int,
                 batch_size: int, dead_letter_retention_days: int, alarm_topic: sns.ITopic,
                 retain_data: bool) -> None:
        super().__init__(scope, id)
        removal = removal_policy(retain_data=retain_data)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", queue_name=f"{queue_name}-dlq", encryption_master_key=key, enforce_ssl=True,
            retention_period=cdk.Duration.days(dead_letter_retention_days), removal_policy=removal)
        self.queue = sqs.Queue(
            self, "Queue", queue_name=queue_name, encryption_master_key=key, enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=max_receive_count),
            removal_policy=removal)
        topic.add_subscription(subscriptions.SqsSubscription(
            self.queue, raw_message_delivery=True, filter_policy=dict(filter_policy)))
        function.add_event_source(event_sources.SqsEventSource(
            self.queue, batch_size=batch_size, report_batch_item_failures=True,
            max_concurrency=MAX_CONCURRENT_BATCHES))

        self.dead_letter_alarm = cloudwatch.Alarm(
            self, "DeadLettersAlarm",
            alarm_description=f"{queue_name}: messages failed {max_receive_count} times and wait in {queue_name}-dlq"
                              " for a fix and a redrive",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        self.dead_letter_alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
