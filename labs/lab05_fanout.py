"""Lab 05 — SNS to SQS fan-out, dead-letter queues and the visibility timeout, for a slower consumer.

Queues, consumers and dead-letter queues are found through the template's own links (event source mappings,
redrive policies, subscriptions), so a fork that adds a consumer changes no expectation here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refarch.stacks.selfnest.config import load_settings
from refarch.stacks.selfnest.messaging import MessagingStack
from refarch.tools.calculators import min_visibility_timeout

from .grading import Check, check, resources, synth_stack

CONSUMER_TIMEOUT = 60   # the push provider can take up to a minute
MAX_RECEIVES = 3
SQS_DEFAULT_RETENTION = 4 * 24 * 3600


def _ref(value: Any) -> str | None:
    """The logical ID behind {"Ref": id} or {"Fn::GetAtt": [id, attribute]}."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def grade(root: Path) -> list[Check]:
    settings = load_settings("dev", root / "config")
    template = synth_stack(settings, MessagingStack, "messaging")
    queues = {queue_id: queue["Properties"] for queue_id, queue in resources(template, "AWS::SQS::Queue").items()}
    functions = {function_id: function["Properties"]
                 for function_id, function in resources(template, "AWS::Lambda::Function").items()}
    # queue -> the function it feeds (the event source mappings are the consumers)
    feeds = {_ref(mapping["Properties"]["EventSourceArn"]): _ref(mapping["Properties"]["FunctionName"])
             for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values()}
    sources = {queue_id: queues[queue_id] for queue_id in feeds if queue_id in queues}
    dead_letters = {_ref(queue["RedrivePolicy"]["deadLetterTargetArn"]): queue
                    for queue in sources.values() if "RedrivePolicy" in queue}
    consumers = {function_id: functions[function_id] for function_id in feeds.values() if function_id in functions}
    # The session-events topic's subscriptions (the alarm topic's email subscriber is not part of the fan-out).
    events_topics = [{"Ref": topic_id} for topic_id, topic in resources(template, "AWS::SNS::Topic").items()
                     if str(topic["Properties"].get("TopicName", "")).endswith("session-events")]
    subscriptions = [subscription["Properties"]
                     for subscription in resources(template, "AWS::SNS::Subscription").values()
                     if subscription["Properties"]["TopicArn"] in events_topics]
    alarms = [alarm["Properties"] for alarm in resources(template, "AWS::CloudWatch::Alarm").values()]

    def timeout(function_id: str | None) -> int:
        return int(functions.get(function_id or "", {}).get("Timeout", 3))

    short = {queue_id: (queue.get("VisibilityTimeout", 30), min_visibility_timeout(timeout(feeds[queue_id])))
             for queue_id, queue in sources.items()
             if queue.get("VisibilityTimeout", 30) < min_visibility_timeout(timeout(feeds[queue_id]))}
    receives = sorted({queue.get("RedrivePolicy", {}).get("maxReceiveCount") for queue in sources.values()},
                      key=str)
    retention = {dlq_id: (queues.get(dlq_id or "", {}).get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION),
                          source.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION))
                 for dlq_id, source in dead_letters.items()}

    def alarms_on(dlq_id: str | None) -> bool:
        queue_name = {"Fn::GetAtt": [dlq_id, "QueueName"]}
        return any(alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                   and any(dimension.get("Value") == queue_name for dimension in alarm.get("Dimensions", []))
                   and (alarm.get("Threshold"), alarm.get("ComparisonOperator")) in {
                       (1, "GreaterThanOrEqualToThreshold"), (0, "GreaterThanThreshold")}
                   for alarm in alarms)

    return [
        check(f"every consumer may run for at least {CONSUMER_TIMEOUT} s",
              bool(consumers) and all(function.get("Timeout", 3) >= CONSUMER_TIMEOUT
                                      for function in consumers.values()),
              "messaging.consumer_timeout_seconds: the push provider can take up to a minute, and a function that "
              "times out mid-call leaves its whole batch to be retried.",
              found=", ".join(f"{function.get('Handler')}: {function.get('Timeout', 3)} s"
                              for function in consumers.values())),
        check("each queue's visibility timeout is at least 6 x its consumer's timeout",
              bool(sources) and not short,
              "AWS: set the source queue's visibility timeout to at least six times the function timeout, so a "
              "batch Lambda retries is not released to another consumer mid-flight (`refarch calc sqs "
              f"--lambda-timeout {CONSUMER_TIMEOUT}`); Lambda refuses a mapping whose queue times out sooner than "
              "the function.",
              found="; ".join(f"{queue_id}: {seen} s < {minimum} s" for queue_id, (seen, minimum) in short.items())),
        check(f"a message moves to its DLQ after {MAX_RECEIVES} receives",
              bool(sources) and receives == [MAX_RECEIVES],
              "messaging.max_receive_count is the redrive policy's maxReceiveCount: receives, not retries.",
              found=f"maxReceiveCount {', '.join(str(value) for value in receives)}"),
        check("dead-letter queues keep messages longer than their source queues",
              bool(retention) and all(kept > source for kept, source in retention.values()),
              "a standard queue's message keeps its original enqueue time in the DLQ: with equal retention it "
              "could expire there almost at once.",
              found="; ".join(f"DLQ {kept // 86400} d vs source {source // 86400} d"
                              for kept, source in retention.values())),
        check("the topic fans out to every consumer queue, raw and filtered by event_type",
              {_ref(subscription.get("Endpoint")) for subscription in subscriptions} >= set(sources)
              and all(subscription["Protocol"] == "sqs" and subscription.get("RawMessageDelivery") is True
                      and "event_type" in subscription.get("FilterPolicy", {}) for subscription in subscriptions),
              "one publish, one copy per subscribed queue; a filter policy keeps events a consumer ignores out.",
              found=f"{len(subscriptions)} subscriptions for {len(sources)} consumer queues"),
        check("an alarm fires on the first dead letter in each DLQ",
              bool(dead_letters) and all(alarms_on(dlq_id) for dlq_id in dead_letters),
              "a DLQ nobody watches is a silent data loss: alarm on ApproximateNumberOfMessagesVisible >= 1.",
              found=", ".join(str(dlq_id) for dlq_id in dead_letters if not alarms_on(dlq_id))),
    ]

