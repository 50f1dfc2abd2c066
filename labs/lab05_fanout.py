"""Lab 05 — SNS to SQS fan-out, dead-letter queues and the visibility timeout, for a slower consumer."""

from __future__ import annotations

from refarch.stacks.selfnest.config import load_settings
from refarch.stacks.selfnest.messaging import MessagingStack
from refarch.tools.calculators import min_visibility_timeout

from .grading import Check, Lab, check, resources, synth_stack

CONSUMER_TIMEOUT = 60
MAX_RECEIVES = 3


def grade() -> list[Check]:
    settings = load_settings("dev")
    template = synth_stack(settings, MessagingStack, "messaging")
    queues = resources(template, "AWS::SQS::Queue")
    sources = {queue_id: queue["Properties"] for queue_id, queue in queues.items()
               if "RedrivePolicy" in queue["Properties"]}
    dead_letters = {queue_id: queue["Properties"] for queue_id, queue in queues.items() if queue_id not in sources}
    consumers = [function["Properties"] for function in resources(template, "AWS::Lambda::Function").values()
                 if "Handler" in function["Properties"] and function["Properties"]["Handler"].endswith(".handler")
                 and function["Properties"]["Handler"].split(".")[0] in {"notifications", "audit"}]
    # The session-events topic's subscriptions (the alarm topic's email subscriber is not part of the fan-out).
    events_topics = [{"Ref": topic_id} for topic_id, topic in resources(template, "AWS::SNS::Topic").items()
                     if str(topic["Properties"].get("TopicName", "")).endswith("session-events")]
    subscriptions = [subscription["Properties"]
                     for subscription in resources(template, "AWS::SNS::Subscription").values()
                     if subscription["Properties"]["TopicArn"] in events_topics]
    alarms = [alarm["Properties"] for alarm in resources(template, "AWS::CloudWatch::Alarm").values()]
    four_days = 4 * 24 * 3600
    minimum = min_visibility_timeout(CONSUMER_TIMEOUT)
    return [
        check(f"both consumers time out after {CONSUMER_TIMEOUT} s",
              len(consumers) == 2 and all(function["Timeout"] == CONSUMER_TIMEOUT for function in consumers),
              "set messaging.consumer_timeout_seconds: the push provider can take up to a minute."),
        check(f"each queue's visibility timeout is exactly 6 x {CONSUMER_TIMEOUT} = {minimum} s",
              len(sources) == 2 and all(queue["VisibilityTimeout"] == minimum for queue in sources.values()),
              f"`refarch calc sqs --lambda-timeout {CONSUMER_TIMEOUT}`: shorter and a message reappears while Lambda "
              "is still retrying it (duplicates); much longer and a failed message waits needlessly to be retried."),
        check(f"a message moves to its DLQ after {MAX_RECEIVES} receives",
              all(queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES for queue in sources.values()),
              "messaging.max_receive_count is the redrive policy's maxReceiveCount: receives, not retries."),
        check("dead-letter queues keep messages longer than their source queues",
              len(dead_letters) == 2 and all(queue.get("MessageRetentionPeriod", four_days) > max(
                  source.get("MessageRetentionPeriod", four_days) for source in sources.values())
                  for queue in dead_letters.values()),
              "a standard queue's message keeps its original enqueue time in the DLQ: with equal retention it "
              "could expire there almost at once."),
        check("the topic fans out to both queues, raw and filtered by event_type",
              len(subscriptions) == 2 and all(subscription["Protocol"] == "sqs" and subscription.get(
                  "RawMessageDelivery") is True and "event_type" in subscription.get("FilterPolicy", {})
                  for subscription in subscriptions),
              "one publish, one copy per subscribed queue; a filter policy keeps events a consumer ignores out."),
        check("an alarm fires on the first dead letter",
              sum(alarm.get("Threshold") == 1 and alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                  for alarm in alarms) == 2,
              "a DLQ nobody watches is a silent data loss; alarm at threshold 1."),
    ]


LAB = Lab(number="05", slug="sns-sqs-fanout", title="SNS to SQS fan-out, DLQ and visibility timeout",
          exam="DVA-C02 Domain 1: Development with AWS Services; SAA-C03 Domain 2: Design Resilient Architectures",
          grade=grade)
