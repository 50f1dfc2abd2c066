"""The migration custom resource's handlers against ECS's real request/response shapes (botocore Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import run_migration
from botocore.stub import Stubber

CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/selfnest-dev-web-Cluster"
TASK_DEFINITION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/selfnestdevwebMigrationTask:7"
TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/selfnest-dev-web-Cluster/0123456789abcdef"
PROPERTIES = {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
              "Cluster": CLUSTER, "TaskDefinition": TASK_DEFINITION, "ContainerName": "Migrate",
              "Subnets": ["subnet-1", "subnet-2"], "SecurityGroups": ["sg-app"], "AssignPublicIp": "DISABLED"}


@pytest.fixture
def ecs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("ecs", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    monkeypatch.setattr(run_migration, "ecs", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def event(request_type: str, **extra: Any) -> dict[str, Any]:
    return {"RequestType": request_type, "ResourceProperties": dict(PROPERTIES), **extra}


def stopped_task(*, exit_code: int | None, stopped_reason: str = "Essential container in task exited",
                 container_reason: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "Migrate", "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if container_reason:
        container["reason"] = container_reason
    return {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "STOPPED", "stoppedReason": stopped_reason,
                       "containers": [container]}], "failures": []}


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_start_the_task_on_fargate_in_the_services_network(
        ecs: Stubber, request_type: str) -> None:
    ecs.add_response("run_task", {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "PROVISIONING"}], "failures": []},
                     expected_params={
                         "cluster": CLUSTER, "taskDefinition": TASK_DEFINITION, "launchType": "FARGATE", "count": 1,
                         "startedBy": run_migration.STARTED_BY,
                         "networkConfiguration": {"awsvpcConfiguration": {
                             "subnets": ["subnet-1", "subnet-2"], "securityGroups": ["sg-app"],
                             "assignPublicIp": "DISABLED"}}})
    extra = {"PhysicalResourceId": "old-revision"} if request_type == "Update" else {}

    response = run_migration.on_event(event(request_type, **extra), None)

    assert response == {"PhysicalResourceId": TASK_DEFINITION, "Data": {"TaskArn": TASK_ARN}}


def test_delete_does_nothing_and_keeps_the_resource_id(ecs: Stubber) -> None:
    assert run_migration.on_event(event("Delete", PhysicalResourceId=TASK_DEFINITION), None) == {
        "PhysicalResourceId": TASK_DEFINITION}
    assert run_migration.is_complete(event("Delete", PhysicalResourceId=TASK_DEFINITION), None) == {
        "IsComplete": True}


def test_a_task_that_cannot_start_fails_the_deploy_with_ecs_reason(ecs: Stubber) -> None:
    ecs.add_response("run_task", {"tasks": [], "failures": [
        {"arn": TASK_DEFINITION, "reason": "RESOURCE:ENI", "detail": "no free addresses in subnet-1"}]})

    with pytest.raises(run_migration.MigrationFailedError, match="RESOURCE:ENI no free addresses in subnet-1"):
        run_migration.on_event(event("Create"), None)


@pytest.mark.parametrize("status", ["PROVISIONING", "PENDING", "RUNNING", "DEPROVISIONING"])
def test_a_task_not_yet_stopped_is_polled_again(ecs: Stubber, status: str) -> None:
    ecs.add_response("describe_tasks", {"tasks": [{"taskArn": TASK_ARN, "lastStatus": status}], "failures": []},
                     expected_params={"cluster": CLUSTER, "tasks": [TASK_ARN]})

    assert run_migration.is_complete(event("Create", Data={"TaskArn": TASK_ARN}), None) == {"IsComplete": False}


def test_the_migration_succeeds_only_when_its_container_exited_0(ecs: Stubber) -> None:
    ecs.add_response("describe_tasks", stopped_task(exit_code=0))

    assert run_migration.is_complete(event("Update", Data={"TaskArn": TASK_ARN}), None) == {
        "IsComplete": True, "Data": {"TaskArn": TASK_ARN}}


def test_a_failed_migration_fails_the_deploy_with_the_stopped_reason(ecs: Stubber) -> None:
    ecs.add_response("describe_tasks", stopped_task(exit_code=1))

    with pytest.raises(run_migration.MigrationFailedError,
                       match="Essential container in task exited; container Migrate exit code 1"):
        run_migration.is_complete(event("Create", Data={"TaskArn": TASK_ARN}), None)


def test_a_task_that_never_ran_its_container_fails_with_why(ecs: Stubber) -> None:
    ecs.add_response("describe_tasks", stopped_task(
        exit_code=None, stopped_reason="ResourceInitializationError: unable to pull secrets or registry auth",
        container_reason="CannotPullContainerError"))

    with pytest.raises(run_migration.MigrationFailedError, match=r"ResourceInitializationError.*exit code None "
                                                            r"\(CannotPullContainerError\)"):
        run_migration.is_complete(event("Create", Data={"TaskArn": TASK_ARN}), None)


def test_a_task_ecs_no_longer_knows_fails_instead_of_polling_forever(ecs: Stubber) -> None:
    ecs.add_response("describe_tasks", {"tasks": [], "failures": [{"arn": TASK_ARN, "reason": "MISSING"}]})

    with pytest.raises(run_migration.MigrationFailedError, match=r"cannot follow the migration task .*MISSING"):
        run_migration.is_complete(event("Create", Data={"TaskArn": TASK_ARN}), None)


def test_a_resource_without_its_properties_names_what_is_missing(ecs: Stubber) -> None:
    incomplete = {"RequestType": "Create", "ResourceProperties": {"Cluster": CLUSTER}}

    with pytest.raises(run_migration.MigrationFailedError, match="lacks properties: TaskDefinition, ContainerName"):
        run_migration.on_event(incomplete, None)
