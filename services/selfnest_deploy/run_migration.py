"""Runs the schema migration task while CloudFormation deploys the web stack, before the API service starts.

A custom resource of the CDK Provider framework: `on_event` starts the migrate task definition on Fargate in the
API's subnets and security group, `is_complete` is polled until the task stops and succeeds only when the
migration container exited 0. A failure reports why the task stopped, so the deploy (and its rollback) says it.
Deleting the resource does nothing: a migrated schema stays with the database.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3

REQUIRED_PROPERTIES = ("Cluster", "TaskDefinition", "ContainerName", "Subnets", "SecurityGroups", "AssignPublicIp")
STARTED_BY = "cloudformation-migrate"   # shows in the console and in ListTasks(startedBy=...)


class MigrationFailedError(RuntimeError):
    """The migration task could not start, or stopped without the migration container exiting 0."""


@functools.cache
def ecs() -> Any:
    return boto3.client("ecs")


def on_event(event: dict[str, Any], context: object) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    properties = _properties(event)
    response = ecs().run_task(
        cluster=properties["Cluster"], taskDefinition=properties["TaskDefinition"], launchType="FARGATE",
        count=1, startedBy=STARTED_BY,
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": properties["Subnets"], "securityGroups": properties["SecurityGroups"],
            "assignPublicIp": properties["AssignPublicIp"]}})
    if response.get("failures") or not response.get("tasks"):
        reasons = "; ".join(f"{failure.get('arn', '')} {failure.get('reason', '')} {failure.get('detail', '')}"
                            .strip() for failure in response.get("failures", [])) or "no task was started"
        raise MigrationFailedError(f"could not start the migration task {properties['TaskDefinition']}: {reasons}")
    task_arn = response["tasks"][0]["taskArn"]
    print(f"started migration task {task_arn}")
    # One resource per deployed task definition revision: a new revision (image or migrations) runs again.
    return {"PhysicalResourceId": properties["TaskDefinition"], "Data": {"TaskArn": task_arn}}


def is_complete(event: dict[str, Any], context: object) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    properties = _properties(event)
    task_arn = event.get("Data", {}).get("TaskArn")
    if not task_arn:
        raise MigrationFailedError("the migration task's ARN is missing from the start step's response")
    response = ecs().describe_tasks(cluster=properties["Cluster"], tasks=[task_arn])
    if response.get("failures") or not response.get("tasks"):
        reasons = "; ".join(f"{failure.get('reason', '')} {failure.get('detail', '')}".strip()
                            for failure in response.get("failures", [])) or "not found"
        raise MigrationFailedError(f"cannot follow the migration task {task_arn}: {reasons}")
    task = response["tasks"][0]
    if task.get("lastStatus") != "STOPPED":
        print(f"migration task {task_arn} is {task.get('lastStatus')}")
        return {"IsComplete": False}
    name = properties["ContainerName"]
    container: dict[str, Any] = next(
        (container for container in task.get("containers", []) if container.get("name") == name), {})
    exit_code = container.get("exitCode")
    if exit_code == 0:
        print(f"migration task {task_arn} finished: container {name} exited 0")
        return {"IsComplete": True, "Data": {"TaskArn": task_arn}}
    detail = f"container {name} exit code {exit_code}"
    if container.get("reason"):
        detail += f" ({container['reason']})"
    raise MigrationFailedError(f"migration task {task_arn} failed: {task.get('stoppedReason', 'no stopped reason')}; "
                          f"{detail}; its output is in the API's log group (stream prefix migrate)")


def _properties(event: dict[str, Any]) -> dict[str, Any]:
    properties = event.get("ResourceProperties", {})
    missing = [name for name in REQUIRED_PROPERTIES if not properties.get(name)]
    if missing:
        raise MigrationFailedError(f"the migration custom resource lacks properties: {', '.join(missing)}")
    return dict(properties)
