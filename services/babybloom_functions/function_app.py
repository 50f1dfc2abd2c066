"""BabyBloom's Azure Functions app (Python v2 programming model): the HTTP API, the daily reminder timer and the
reminder queue trigger. The handlers live in babybloom_app; this file only binds them to triggers.

HTTP functions are anonymous at the Functions level on purpose (function keys would be shared secrets): every handler
requires the caller's Entra ID access token and verifies it itself (babybloom_app/identity.py), with App Service
authentication in front as a second layer.
"""

from __future__ import annotations

import logging

import azure.functions as func
from babybloom_app import api, runtime
from babybloom_app.reminders import Reminder, enqueue
from babybloom_app.settings import REMINDER_QUEUE, REMINDERS_CONNECTION
from pydantic import ValidationError

# 18:00 UTC: late enough that most people have had the chance to write, early enough to still do it today.
DAILY_REMINDER_SCHEDULE = "0 0 18 * * *"
log = logging.getLogger("babybloom.functions")

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="profile", methods=["GET"])
def read_profile(req: func.HttpRequest) -> func.HttpResponse:
    return api.read_profile(req, runtime.current())


@app.route(route="profile", methods=["PUT"])
def save_profile(req: func.HttpRequest) -> func.HttpResponse:
    return api.save_profile(req, runtime.current())


@app.route(route="content/weeks/{week}", methods=["GET"])
def weekly_content(req: func.HttpRequest) -> func.HttpResponse:
    return api.weekly_content(req, runtime.current())


@app.route(route="content/current", methods=["GET"])
def current_week_content(req: func.HttpRequest) -> func.HttpResponse:
    return api.current_week_content(req, runtime.current())


@app.route(route="journal", methods=["POST"])
def add_journal_entry(req: func.HttpRequest) -> func.HttpResponse:
    return api.add_journal_entry(req, runtime.current())


@app.route(route="journal", methods=["GET"])
def list_journal_entries(req: func.HttpRequest) -> func.HttpResponse:
    return api.list_journal_entries(req, runtime.current())


@app.route(route="journal/{entry_id}", methods=["DELETE"])
def delete_journal_entry(req: func.HttpRequest) -> func.HttpResponse:
    return api.delete_journal_entry(req, runtime.current())


@app.timer_trigger(arg_name="timer", schedule=DAILY_REMINDER_SCHEDULE, run_on_startup=False)
def queue_daily_reminders(timer: func.TimerRequest) -> None:
    services = runtime.current()
    day = services.today()
    reminders = [Reminder(userId=user, date=day) for user in services.repository.users_without_entry_on(day)]
    enqueue(services.reminder_queue, reminders)
    log.info("queued %d journal reminders for %s%s", len(reminders), day.isoformat(),
             " (run was past due)" if timer.past_due else "")


@app.queue_trigger(arg_name="message", queue_name=f"%{REMINDER_QUEUE}%", connection=REMINDERS_CONNECTION)
def send_reminder(message: func.QueueMessage) -> None:
    try:
        reminder = Reminder.model_validate_json(message.get_body())
    except ValidationError as error:
        # Raising leaves the message to the host's retries and then the poison queue, where it can be inspected.
        problems = error.errors(include_url=False)
        raise ValueError(f"reminder message {message.id} is not a reminder: {problems}") from None
    runtime.current().notifier.send(reminder)
