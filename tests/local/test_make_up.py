"""`make up`'s path end to end: the real CDK CLI deploys the synthesized stacks into MiniStack, the booking API runs
on a local PostgreSQL, `make demo`'s scenario passes; then the bad situations each get one clear line, and
`make down` leaves nothing running."""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient
from botocore.exceptions import ClientError
from refarch.local.logs import function_labels
from refarch.local.processes import Registry
from refarch.local.selfnest import ROOT, Endpoints, aws_client, role_credentials, web_task_definitions


def local(*arguments: str, state: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refarch.local", *arguments, "--state", str(state)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def state():
    # Not pytest's tmp_path: its parent is private to the user, and as root PostgreSQL runs as another account.
    parent = Path(tempfile.mkdtemp(prefix="refarch-local-"))
    parent.chmod(0o755)
    try:
        yield parent / ".local"
    finally:
        local("down", state=parent / ".local")
        shutil.rmtree(parent, ignore_errors=True)


@dataclass(frozen=True)
class Interrupted:
    returncode: int | None
    stderr: str
    recorded: list[Any]


@pytest.fixture(scope="module")
def interrupted(state: Path) -> Interrupted:
    """A `make up` stopped with ctrl-c once the emulator runs, and then a record of a run that crashed: what a
    learner's next `make up` finds in the worst case (the deploy test comes up from there, not from nothing)."""
    starting = subprocess.Popen([sys.executable, "-m", "refarch.local", "up", "--state", str(state)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    registry = Registry(state)
    deadline = time.monotonic() + 300
    while not any(process.name == "ministack" for process in registry.load()) and time.monotonic() < deadline:
        time.sleep(0.2)
    recorded = registry.load()
    starting.send_signal(signal.SIGINT)
    _, stderr = starting.communicate(timeout=120)
    # A crashed run leaves its records behind (a pid that no longer runs).
    state.mkdir(parents=True, exist_ok=True)
    (state / "processes.json").write_text(json.dumps([{"name": "ministack", "pid": 2 ** 22 + 1, "started": "1",
                                                       "log": str(state / "logs" / "ministack.log")}]))
    return Interrupted(starting.returncode, stderr, recorded)


def test_ctrl_c_half_way_leaves_nothing_running(interrupted: Interrupted):
    assert interrupted.recorded, "make up never started the emulator"
    assert interrupted.returncode == 130
    assert interrupted.stderr.strip().splitlines()[-1] == "interrupted: everything `make up` had started is stopped"
    assert not any(_still_running(process.pid, process.started) for process in interrupted.recorded)


def test_up_after_an_interrupted_and_a_crashed_run_cleans_up_deploys_and_the_demo_scenario_passes(
        state: Path, interrupted: Interrupted):
    started = local("up", state=state)
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"cleaning up {state} left by a run that did not stop cleanly" in started.stdout
    endpoints = json.loads((state / "endpoints.json").read_text())
    assert endpoints["api"] in started.stdout and endpoints["chat"] in started.stdout
    assert "make demo" in started.stdout
    assert json.loads((state / "babybloom.json").read_text())["functions"] in started.stdout
    demo = local("demo", state=state, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo passed" in demo.stdout
    (state / "demo.out").write_text(demo.stdout)   # for the follow test: the booking it made


def test_follow_prints_the_demo_bookings_lines_from_the_api_and_every_consumer_in_time_order(state: Path):
    """`make demo` names its booking and `make follow ID=<it>` finds that booking's correlation id in the API's log
    and every line carrying it — the API's and each session-event consumer's, run by the emulator — oldest first,
    and copies the functions' logs next to the processes' in .local/logs/."""
    demo = (state / "demo.out").read_text()
    [(session_id, correlation_id)] = re.findall(r"make follow ID=(\S+)\s+\(its request's correlation id: (\S+)\)", demo)
    consumers = _session_event_consumers(Endpoints.load(state))
    (state / "consumers.json").write_text(json.dumps(sorted(consumers)))   # for the follow after `make down`
    deadline = time.monotonic() + 120
    while True:   # the emulator runs the consumers asynchronously; the demo itself waited for their tables
        followed = local("follow", session_id, state=state)
        assert followed.returncode == 0, followed.stdout + followed.stderr
        *lines, summary = followed.stdout.strip().splitlines()
        sources = {line.split()[1] for line in lines}
        if sources >= {"selfnest-api", *consumers} or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sources >= {"selfnest-api", *consumers}, followed.stdout
    # The booking's request and the demo's later cancellation of it: every line carries one of their ids, and
    # the booking's id is on a line of every source.
    correlation_ids = summary.split("correlation ids: ")[1].split(", ")
    assert correlation_id in correlation_ids, followed.stdout
    times = [line.split()[0] for line in lines]
    assert times == sorted(times)
    assert all(any(one in line for one in correlation_ids) for line in lines), followed.stdout
    for source in ("selfnest-api", *consumers):
        assert any(correlation_id in line for line in lines if line.split()[1] == source), (source, followed.stdout)
    assert any("session_booked" in line and session_id in line for line in lines if " selfnest-api " in line)
    labels = {function: label for function, label in function_labels(Endpoints.load(state)).values()}
    assert {labels[path.stem] for path in (state / "logs" / "lambda").glob("*.log")} >= consumers
    # A correlation id follows that one request; a malformed or unknown id gets one line.
    by_request = local("follow", correlation_id, state=state)
    assert by_request.returncode == 0 and correlation_id in by_request.stdout
    malformed = local("follow", "a b", state=state)
    assert malformed.returncode == 1
    assert malformed.stderr.strip() == ("error: follow: 'a b' is not a booking id or a correlation id "
                                        "(8 to 128 letters, digits, '.', '_', ':' or '-')")
    unknown = local("follow", "00000000-0000-0000-0000-000000000000", state=state)
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1
    assert "no log line mentions" in unknown.stderr


def _session_event_consumers(endpoints: Endpoints) -> set[str]:
    """The labels `follow` shows for the deployed functions fed by an SQS queue subscribed to the session-events
    topic (a fork's new consumer is expected in its output too)."""
    emulator, region = endpoints.emulator, endpoints.region
    sns, lambda_ = aws_client("sns", endpoint=emulator, region=region), aws_client("lambda", endpoint=emulator,
                                                                                  region=region)
    queues = {subscription["Endpoint"] for subscription in sns.list_subscriptions_by_topic(
        TopicArn=endpoints.session_events_topic_arn)["Subscriptions"] if subscription["Protocol"] == "sqs"}
    mappings = lambda_.list_event_source_mappings()["EventSourceMappings"]
    consuming = {mapping["FunctionArn"].rsplit(":", 1)[-1] for mapping in mappings
                 if mapping["EventSourceArn"] in queues}
    assert consuming, "no function consumes the session-events topic"
    labels = dict(function_labels(endpoints).values())
    return {labels[function] for function in consuming}


def test_babybloom_queue_trigger_runs_reminders_and_poisons_bad_messages(state: Path):
    """The host polls the plan's reminders queue: a reminder is consumed; a message that is no reminder is retried
    host.json's maxDequeueCount times, then moved to <queue>-poison, as the Functions host does."""
    bloom = json.loads((state / "babybloom.json").read_text())
    connection, queue_name = bloom["app_settings"]["REMINDERS"], bloom["app_settings"]["REMINDER_QUEUE"]
    queue = QueueClient.from_connection_string(connection, queue_name)
    poison = QueueClient.from_connection_string(connection, f"{queue_name}-poison")
    queue.send_message(encode(json.dumps({"userId": "bloom-e2e", "date": "2026-12-02"})))
    queue.send_message(encode("not a reminder"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if queue.get_queue_properties().approximate_message_count == 0 and _poisoned(poison):
            break
        time.sleep(0.5)
    assert queue.get_queue_properties().approximate_message_count == 0
    assert [base64.b64decode(message.content).decode() for message in poison.peek_messages()] == ["not a reminder"]


def encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()   # host.json: messageEncoding base64


def _poisoned(poison: QueueClient) -> bool:
    try:
        return bool(poison.peek_messages())
    except ResourceNotFoundError:
        return False


def test_iam_is_enforced_on_the_api_task_role(state: Path):
    """The API runs under its deployed task role with the emulator's IAM checks on: what the role may do works,
    what it was never granted is refused, as on AWS."""
    endpoints = json.loads((state / "endpoints.json").read_text())
    emulator, region = endpoints["emulator"], endpoints["region"]
    api_task, _ = web_task_definitions(endpoint=emulator, region=region)
    as_task = role_credentials(api_task.task_role_arn, session="test", endpoint=emulator, region=region)
    sns = boto3.client("sns", endpoint_url=emulator, region_name=region, aws_access_key_id=as_task["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=as_task["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=as_task["AWS_SESSION_TOKEN"])
    sns.publish(TopicArn=endpoints["session_events_topic_arn"], Message="{}",
                MessageAttributes={"type": {"DataType": "String", "StringValue": "probe.ignored"}})
    with pytest.raises(ClientError) as refused:
        sns.create_topic(Name="not-granted")
    assert refused.value.response["Error"]["Code"] in ("AuthorizationError", "AccessDenied", "AccessDeniedException")


def test_migrate_task_ran_with_the_master_secret_and_the_api_signs_in_as_its_own_iam_login_over_tls(state: Path):
    """As on AWS: the one-off migrate task (its own task definition, the master secret) created the API's login with
    no password, in rds_iam; the API holds only connections of that login, each over TLS, signed in with IAM tokens
    (which this cluster admits for rds_iam members without checking, docs/local.md); plain text is refused, and
    every other login still needs its password."""
    endpoints = json.loads((state / "endpoints.json").read_text())
    emulator, region = endpoints["emulator"], endpoints["region"]
    api_task, migration_task = web_task_definitions(endpoint=emulator, region=region)
    secrets = aws_client("secretsmanager", endpoint=emulator, region=region)
    master = json.loads(secrets.get_secret_value(SecretId=migration_task.environment["DB_SECRET_ARN"])["SecretString"])
    app_user = api_task.environment["DB_IAM_USER"]
    assert "DB_SECRET_ARN" not in api_task.environment
    assert migration_task.environment["APP_DB_IAM_USER"] == app_user != master["username"]
    assert '"event": "migrations_done"' in (state / "logs" / "selfnest-migrate.log").read_text()
    [server_socket] = (state / "postgres" / "socket").glob(".s.PGSQL.*[0-9]")   # not its .lock file
    port = int(server_socket.name.rsplit(".", 1)[1])
    with psycopg.connect(host=str(server_socket.parent), port=port, user="postgres", dbname="postgres") as admin:
        login = admin.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolpassword IS NULL, "
                              "pg_has_role(rolname, 'rds_iam', 'MEMBER') FROM pg_authid WHERE rolname = %s",
                              (app_user,)).fetchone()
        connections = admin.execute(
            "SELECT activity.usename, tls.ssl FROM pg_stat_activity activity JOIN pg_stat_ssl tls USING (pid) "
            "WHERE activity.client_addr IS NOT NULL").fetchall()
    assert login == (False, False, False, True, True)
    assert connections, "the API holds no database connection"
    assert {user for user, _ in connections} == {app_user}
    assert all(over_tls for _, over_tls in connections)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user=app_user, password="any-token",
                        dbname=api_task.environment["DB_NAME"], sslmode="disable", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user=master["username"], password="not-the-password",
                        dbname=api_task.environment["DB_NAME"], sslmode="require", connect_timeout=5)


def test_up_twice_says_it_is_already_up(state: Path):
    again = local("up", state=state)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [again.stderr.strip()]
    assert "already up" in again.stderr and "make down" in again.stderr


def test_down_stops_every_process_it_started(state: Path):
    started = Registry(state).running()
    assert {process.name for process in started} >= {"ministack", "postgres", "selfnest-api", "cosmosdb-server",
                                                      "azurite", "babybloom-functions"}
    stopped = local("down", state=state)
    assert stopped.returncode == 0, stopped.stderr
    assert Registry(state).running() == []   # each recorded PID is gone, or now belongs to another program
    assert "ministack" in stopped.stdout and "selfnest-api" in stopped.stdout
    # The emulator kept the functions' logs in memory; `make down` copied them first, so the booking still follows.
    [session_id] = re.findall(r"make follow ID=(\S+)", (state / "demo.out").read_text())
    followed = local("follow", session_id, state=state)
    assert followed.returncode == 0, followed.stderr
    consumers = json.loads((state / "consumers.json").read_text())
    assert {"selfnest-api", *consumers} <= {line.split()[1] for line in followed.stdout.strip().splitlines()[:-1]}


def test_demo_without_up_says_so(tmp_path: Path):
    demo = local("demo", state=tmp_path / ".local")
    assert demo.returncode == 1
    assert demo.stderr.strip() == "error: nothing is running here: `make up` first"


def test_a_port_in_use_is_one_line(tmp_path: Path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = local("up", "--port", str(port), state=tmp_path / ".local")
    assert started.returncode == 1
    assert started.stderr.strip() == (f"error: port {port} on 127.0.0.1 is in use: stop what holds it or pick "
                                      "another with `make up LOCAL_PORT=...`")


def test_up_after_down_starts_from_a_clean_state(tmp_path: Path):
    """`make down` leaves .local/ (logs, the database cluster, the emulator's state); the next `make up` deploys
    afresh, so it must not start on the previous run's cluster, whose logins hold the previous secrets' passwords."""
    state = tmp_path / ".local"
    leftover = state / "postgres" / "data" / "PG_VERSION"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("17\n")
    with socket.socket() as holder:   # stops `up` right after it has prepared its state folder
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        started = local("up", "--port", str(holder.getsockname()[1]), state=state)
    assert started.returncode == 1 and "is in use" in started.stderr
    assert not leftover.exists()


def _still_running(pid: int, started: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and fields[19] == started

