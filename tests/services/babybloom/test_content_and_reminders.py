"""Weekly content read through from the shipped seed; the daily reminder timer and the queue trigger."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient
from babybloom_app import runtime
from babybloom_app.content import load_seed
from babybloom_app.repository import WEEKLY_CONTENT
from refarch.stacks.babybloom.program import REMINDER_QUEUE

from .conftest import (
    APP_DIR,
    TODAY,
    LocalServers,
    call,
    function_app,
    http,
    principal,
    queue_message,
    signed_in,
    user_id_of,
)


def content(week: str, who: str) -> func.HttpResponse:
    return http(function_app.weekly_content,
                func.HttpRequest("GET", f"/api/content/weeks/{week}", headers=signed_in(who),
                                 route_params={"week": week}, body=b""))


def put(url: str, function: Any, body: dict[str, Any], who: str) -> func.HttpResponse:
    return http(function, func.HttpRequest("PUT" if "profile" in url else "POST", url,
                                           headers=signed_in(who), body=json.dumps(body).encode()))


def test_every_week_1_to_42_answers_with_its_seed_content(services: runtime.Services) -> None:
    who = principal()
    seed = load_seed()
    for week in range(1, 43):
        response = content(str(week), who)
        assert response.status_code == 200
        assert json.loads(response.get_body()) == {**seed.week(week), "id": str(week), "seedVersion": seed.version}


@pytest.mark.parametrize("week", ["0", "43", "-1", "twelve", "1.5"])
def test_weeks_outside_1_to_42_are_400(services: runtime.Services, week: str) -> None:
    response = content(week, principal())
    assert response.status_code == 400
    assert json.loads(response.get_body())["errors"][0]["field"] == "week"


def test_an_outdated_stored_copy_is_replaced_by_the_shipped_seed(services: runtime.Services, database: Any) -> None:
    container = database.get_container_client(WEEKLY_CONTENT)
    container.upsert_item({"id": "20", "week": 20, "title": "old text", "seedVersion": 0})
    answered = json.loads(content("20", principal()).get_body())
    assert answered["title"] == load_seed().week(20)["title"]
    assert container.read_item("20", partition_key=20)["seedVersion"] == load_seed().version


def test_current_content_follows_the_profile(services: runtime.Services) -> None:
    who = principal()
    put("/api/profile", function_app.save_profile, {"dueDate": (TODAY + timedelta(days=280 - 100)).isoformat()}, who)
    response = call(function_app.current_week_content,
                    func.HttpRequest("GET", "/api/content/current", headers=signed_in(who), body=b""))
    answered = json.loads(response.get_body())
    assert answered["week"] == 15  # 14 weeks 2 days along: the 15th week
    assert answered["pregnancy"]["trimester"] == 2


def _run_timer() -> None:
    call(function_app.queue_daily_reminders, TimerRequest(past_due=False))


def test_timer_queues_one_reminder_per_expecting_user_without_an_entry_today(
    services: runtime.Services, empty_store: Any, reminder_queue: QueueClient
) -> None:
    wrote_today, wrote_yesterday, silent, no_profile, on_last_day, long_past = (principal() for _ in range(6))
    for who in (wrote_today, wrote_yesterday, silent):
        put("/api/profile", function_app.save_profile, {"dueDate": (TODAY + timedelta(days=60)).isoformat()}, who)
    put("/api/profile", function_app.save_profile, {"dueDate": (TODAY - timedelta(days=14)).isoformat()}, on_last_day)
    # Saved weeks ago, now past 42 weeks (the API would no longer accept these dates): no more reminders.
    services.repository.save_profile(user_id_of(long_past), {"dueDate": (TODAY - timedelta(days=15)).isoformat()})
    for entry_date, who in ((TODAY, wrote_today), (TODAY, wrote_today), (TODAY - timedelta(days=1), wrote_yesterday),
                            (TODAY, no_profile)):
        put("/api/journal", function_app.add_journal_entry, {"date": entry_date.isoformat(), "mood": 3}, who)

    _run_timer()

    messages = reminder_queue.receive_messages(max_messages=32, visibility_timeout=1)
    queued = [json.loads(base64.b64decode(message.content)) for message in messages]
    assert sorted(queued, key=lambda item: item["userId"]) == sorted(
        [{"userId": user_id_of(who), "date": TODAY.isoformat()} for who in (wrote_yesterday, silent, on_last_day)],
        key=lambda item: item["userId"],
    )


def test_queue_trigger_sends_the_reminder_through_the_notifier(
    services: runtime.Services, empty_store: Any, reminder_queue: QueueClient, caplog: pytest.LogCaptureFixture
) -> None:
    who = principal()
    put("/api/profile", function_app.save_profile, {"dueDate": (TODAY + timedelta(days=60)).isoformat()}, who)
    _run_timer()
    # What the host hands the trigger: the message as it sits on the queue (base64 on the wire), decoded.
    (stored,) = list(reminder_queue.receive_messages(max_messages=32, visibility_timeout=1))
    message = queue_message(id=stored.id, body=base64.b64decode(stored.content), pop_receipt=stored.pop_receipt)
    with caplog.at_level(logging.INFO, logger="babybloom.reminders"):
        call(function_app.send_reminder, message)
    assert f"reminder for user {user_id_of(who)}: no journal entry yet on {TODAY.isoformat()}" in caplog.messages


HOST_SETTINGS = json.loads((APP_DIR / "host.json").read_text(encoding="utf-8"))
MAX_DEQUEUE_COUNT = HOST_SETTINGS["extensions"]["queues"]["maxDequeueCount"]


def deliver_like_the_host(queue: QueueClient, poison: QueueClient, trigger: Any) -> list[Exception]:
    """What the Functions host's storage-queue processor does with each message (azure-webjobs-sdk QueueProcessor):
    run the trigger; on success delete the message; on failure release it for another attempt, until its dequeue
    count reaches host.json's maxDequeueCount, then copy it to `<queue>-poison` and delete it. Returns the failures.
    """
    failures: list[Exception] = []
    while stored := next(iter(queue.receive_messages(max_messages=1, visibility_timeout=5)), None):
        message = queue_message(id=stored.id, body=base64.b64decode(stored.content),
                                dequeue_count=stored.dequeue_count or 1, pop_receipt=stored.pop_receipt)
        try:
            call(trigger, message)
        except Exception as error:
            failures.append(error)
            if (stored.dequeue_count or 1) >= MAX_DEQUEUE_COUNT:
                poison.send_message(stored.content)
                queue.delete_message(stored)
            else:
                queue.update_message(stored, visibility_timeout=0)
        else:
            queue.delete_message(stored)
    return failures


@pytest.mark.parametrize("body", [b"not json", b'{"userId": "u1"}', b'{"userId": "u1", "date": "2026-03-02", "x": 1}'])
def test_a_message_that_is_not_a_reminder_fails_towards_the_poison_queue(
    services: runtime.Services, empty_store: Any, reminder_queue: QueueClient, local_servers: LocalServers,
    caplog: pytest.LogCaptureFixture, body: bytes,
) -> None:
    poison = QueueClient.from_connection_string(local_servers.queue_connection_string, f"{REMINDER_QUEUE}-poison")
    with contextlib.suppress(ResourceExistsError):
        poison.create_queue()
    poison.clear_messages()
    good = {"userId": "u-good", "date": TODAY.isoformat()}
    reminder_queue.send_message(base64.b64encode(body).decode())
    reminder_queue.send_message(base64.b64encode(json.dumps(good).encode()).decode())

    with caplog.at_level(logging.INFO, logger="babybloom.reminders"):
        failures = deliver_like_the_host(reminder_queue, poison, function_app.send_reminder)

    # Every attempt raised (so the host never deletes it as done), naming the message and what is wrong with it.
    assert len(failures) == MAX_DEQUEUE_COUNT
    assert all(isinstance(error, ValueError) and " is not a reminder: " in str(error) for error in failures)
    # It ends in the poison queue as it was sent, nothing was sent for it, and its queue-mate was delivered once.
    [poisoned] = list(poison.receive_messages(max_messages=32))
    assert base64.b64decode(poisoned.content) == body
    assert list(reminder_queue.receive_messages(max_messages=32)) == []
    assert [m for m in caplog.messages if m.startswith("reminder for user")] == [
        f"reminder for user u-good: no journal entry yet on {TODAY.isoformat()}"]
