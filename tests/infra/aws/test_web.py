"""Web tier: listeners and TLS per environment, WAF in prod, the Fargate service and its least-privilege role."""

from __future__ import annotations

import importlib
import json
from typing import Any

from refarch.constructs.aws.database import APPLICATION_LOGIN
from refarch.constructs.aws.web import MigrationOnDeploy

from .assembly import Assembly, Resource, get_att, ref, service_task_definition


def password_era_logins() -> tuple[str, ...]:
    """The API's logins before IAM authentication, which its migrate task retires (the service's own list)."""
    import tests.services.selfnest_api  # noqa: F401 - puts the API's folder on the import path, as its tests do

    logins: tuple[str, ...] = importlib.import_module("selfnest_api.migrations").PRE_IAM_LOGINS
    return logins


def listeners(assembly: Assembly) -> dict[int, dict[str, Any]]:
    return {listener["Properties"]["Port"]: listener["Properties"]
            for listener in assembly.resources("web", "AWS::ElasticLoadBalancingV2::Listener").values()}


def test_prod_serves_https_with_its_certificate_and_redirects_http(prod: Assembly) -> None:
    by_port = listeners(prod)
    assert sorted(by_port) == [80, 443]
    https = by_port[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": prod.settings.web.certificate_arn}]
    assert str(https["SslPolicy"]).startswith("ELBSecurityPolicy-TLS13")
    [redirect] = by_port[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"] == {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}


def test_dev_without_a_certificate_serves_plain_http_only(dev: Assembly) -> None:
    assert dev.settings.web.certificate_arn is None
    assert sorted(listeners(dev)) == [80]
    assert listeners(dev)[80]["Protocol"] == "HTTP"


def test_waf_protects_the_load_balancer_in_prod_only(dev: Assembly, prod: Assembly) -> None:
    assert dev.resources("web", "AWS::WAFv2::WebACL") == {}
    acl_id, acl = prod.only("web", "AWS::WAFv2::WebACL")
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= set(rules)
    limit = rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]
    assert limit == {"AggregateKeyType": "IP", "Limit": prod.settings.web.waf_requests_per_5_minutes_per_ip}
    _, association = prod.only("web", "AWS::WAFv2::WebACLAssociation")
    [(balancer_id, _)] = prod.resources("web", "AWS::ElasticLoadBalancingV2::LoadBalancer").items()
    assert association["Properties"]["ResourceArn"] == {"Ref": balancer_id}
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    _, logging = prod.only("web", "AWS::WAFv2::LoggingConfiguration")
    assert logging["Properties"]["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]


def test_load_balancer_drops_bad_headers_and_writes_access_logs(assembly: Assembly) -> None:
    _, balancer = assembly.only("web", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in balancer["Properties"]["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["deletion_protection.enabled"] == str(assembly.settings.retain_data).lower()
    assert balancer["Properties"]["Scheme"] == "internet-facing"


def test_access_log_bucket_is_private_and_tls_only(assembly: Assembly) -> None:
    bucket_id, bucket = assembly.only("web", "AWS::S3::Bucket")
    assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    [(_, policy)] = [(k, p) for k, p in assembly.resources("web", "AWS::S3::BucketPolicy").items()
                     if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_service_runs_arm64_tasks_in_the_app_tier(assembly: Assembly) -> None:
    task = service_task_definition(assembly)
    assert task["Properties"]["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
    assert task["Properties"]["Cpu"] == str(assembly.settings.web.cpu)
    [container] = task["Properties"]["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is True
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    _, service = assembly.only("web", "AWS::ECS::Service")
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    expected_public_ip = "ENABLED" if assembly.settings.network.nat_gateways == "none" else "DISABLED"
    assert network["AssignPublicIp"] == expected_public_ip
    subnets = [assembly.resolve(subnet)["Ref"] for subnet in network["Subnets"]]
    assert all(subnet.startswith("Vpcapp") for subnet in subnets), subnets
    _, scaling = assembly.only("web", "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (scaling["Properties"]["MinCapacity"], scaling["Properties"]["MaxCapacity"]) == (
        assembly.settings.web.min_tasks, assembly.settings.web.max_tasks)


def test_task_role_signs_in_as_its_login_and_publishes_session_events_and_nothing_else(assembly: Assembly) -> None:
    [(role_id, _)] = [(k, r) for k, r in assembly.resources("web", "AWS::IAM::Role").items()
                      if r["Metadata"]["aws:cdk:path"].endswith("Api/Task/TaskRole/Resource")]
    statements = [statement for policy in assembly.resources("web", "AWS::IAM::Policy").values()
                  if {"Ref": role_id} in policy["Properties"]["Roles"]
                  for statement in policy["Properties"]["PolicyDocument"]["Statement"]]
    by_action = {json.dumps(s["Action"]): s for s in statements}
    # No secret to read: the API's login signs in with IAM database authentication.
    assert set(by_action) == {'"rds-db:connect"', '"sns:Publish"', '["kms:Decrypt", "kms:GenerateDataKey"]',
                              '["cognito-idp:AdminGetUser", "cognito-idp:ListUsersInGroup"]'}
    assert all(s["Effect"] == "Allow" for s in statements)
    connect = by_action['"rds-db:connect"']
    instance_id, _ = assembly.only("data", "AWS::RDS::DBInstance")
    account = "<account>" if assembly.accounts["web"] == "unknown-account" else assembly.accounts["web"]
    assert dbuser_arn(assembly, connect["Resource"]) == (
        f"arn:aws:rds-db:{assembly.settings.region}:{account}:dbuser:"
        f"{json.dumps(get_att(instance_id, 'DbiResourceId'))}/{APPLICATION_LOGIN}")

    topic_id = next(k for k, r in assembly.resources("messaging", "AWS::SNS::Topic").items()
                    if r["Properties"]["TopicName"] == assembly.settings.name("session-events"))
    assert assembly.resolve(by_action['"sns:Publish"']["Resource"]) == {"Ref": topic_id}
    topic_key = assembly.resources("messaging", "AWS::SNS::Topic")[topic_id]["Properties"]["KmsMasterKeyId"]
    assert assembly.resolve(by_action['["kms:Decrypt", "kms:GenerateDataKey"]']["Resource"]) == assembly.resolve(
        topic_key)
    # The therapist roster reads who is a therapist now, from this environment's pool only.
    [(pool_id, _)] = assembly.resources("identity", "AWS::Cognito::UserPool").items()
    roster = by_action['["cognito-idp:AdminGetUser", "cognito-idp:ListUsersInGroup"]']
    assert assembly.resolve(roster["Resource"]) == {"Fn::GetAtt": [pool_id, "Arn"]}
    assert "*" not in json.dumps([s["Resource"] for s in statements])


def test_api_image_is_staged_from_the_service_folder_for_arm64(assembly: Assembly) -> None:
    manifest = json.loads(next(assembly.outdir.glob("*web*.assets.json")).read_text(encoding="utf-8"))
    [image] = manifest["dockerImages"].values()
    assert image["source"]["platform"] == "linux/arm64"
    staged = assembly.outdir / image["source"]["directory"]
    assert (staged / "Dockerfile").is_file() and (staged / "requirements.txt").is_file()
    assert (staged / "selfnest_api" / "__main__.py").is_file()


def test_the_api_gets_its_abuse_limits_from_config(assembly: Assembly) -> None:
    task = service_task_definition(assembly)
    environment = {variable["Name"]: variable["Value"]
                   for variable in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    web = assembly.settings.web
    assert (environment["MAX_OPEN_BOOKINGS"], environment["BOOKING_CHANGES_PER_HOUR"],
            environment["SESSIONS_PAGE_SIZE"]) == (str(web.max_open_bookings_per_client),
                                                  str(web.booking_changes_per_hour), str(web.sessions_page_size))


def migrate_task_definition(assembly: Assembly) -> tuple[str, Resource]:
    return assembly.at_path("web", "Migration/Task/Resource")


def role_statements(assembly: Assembly, function_path: str) -> dict[str, dict[str, Any]]:
    """The statements of the policies attached to the role of the function at `function_path`, by action."""
    _, function = assembly.at_path("web", function_path)
    role = ref(function["Properties"]["Role"]["Fn::GetAtt"][0])
    return {json.dumps(statement["Action"]): statement
            for policy in assembly.resources("web", "AWS::IAM::Policy").values()
            if role in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]}


def arn_text(arn: str | dict[str, Any]) -> str:
    """An ARN as text, each token in it as its JSON (an account the stack knows is already spelled out)."""
    if isinstance(arn, str):
        return arn
    return "".join(part if isinstance(part, str) else json.dumps(part) for part in arn["Fn::Join"][1])


def dbuser_arn(assembly: Assembly, resource: Any) -> str:
    """An rds-db:connect resource as text: the account as <account>, the DbiResourceId as the GetAtt it reads
    (followed through the stack output it crosses)."""
    parts = []
    for part in assembly.resolve(resource)["Fn::Join"][1]:
        if part == {"Ref": "AWS::AccountId"}:
            parts.append("<account>")
        elif isinstance(part, dict) and "Fn::GetStackOutput" in part:
            output = part["Fn::GetStackOutput"]
            [template] = [template for name, template in assembly.templates.items()
                          if output["StackName"].endswith(f"-{name}")]
            parts.append(json.dumps(template["Outputs"][output["OutputName"]]["Value"]))
        else:
            parts.append(part if isinstance(part, str) else json.dumps(part))
    return "".join(parts)


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_every_deploy_migrates_the_schema_before_the_service_starts(assembly: Assembly) -> None:
    """The API signs in as the login the migration creates: on a first deploy, a service started before the migrate
    task would fail its health checks and the circuit breaker would roll the whole stack back."""
    migration_id, migration = assembly.only("web", "Custom::SchemaMigration")
    _, service = assembly.only("web", "AWS::ECS::Service")
    assert migration_id in service["DependsOn"]
    properties = migration["Properties"]
    task_id, task = migrate_task_definition(assembly)
    # Names the task definition revision: a new image or new migrations is a new revision, hence an update: a rerun.
    assert properties["TaskDefinition"] == ref(task_id)
    [container] = task["Properties"]["ContainerDefinitions"]
    assert properties["ContainerName"] == container["Name"]
    assert container["Command"] == ["python", "-m", "selfnest_api", "migrate"]
    assert properties["Cluster"] == get_att(service["Properties"]["Cluster"]["Ref"], "Arn")
    # Exactly the service's network: its app subnets, its security group, its public-IP setting.
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert {key: properties[key] for key in network} == network
    # The task reads the secrets under its roles' policies: they exist before it runs.
    task_roles = [ref(task["Properties"][role]["Fn::GetAtt"][0]) for role in ("TaskRoleArn", "ExecutionRoleArn")]
    policies_of_task_roles = {logical_id for logical_id, policy in assembly.resources("web", "AWS::IAM::Policy").items()
                              if any(role in policy["Properties"]["Roles"] for role in task_roles)}
    assert policies_of_task_roles and policies_of_task_roles <= set(migration["DependsOn"])


def test_the_migration_fails_the_deploy_within_the_waiters_timeout(assembly: Assembly) -> None:
    _, waiter = assembly.at_path("web", "MigrateOnDeploy/Provider/waiter-state-machine/Resource")
    # The definition joins function ARNs into JSON text: any string stands in for them.
    definition = "".join(part if isinstance(part, str) else "arn"
                         for part in waiter["Properties"]["DefinitionString"]["Fn::Join"][1])
    [retry] = json.loads(definition)["States"]["framework-isComplete-task"]["Retry"]
    waited = retry["IntervalSeconds"] * retry["MaxAttempts"]
    assert retry["IntervalSeconds"] == MigrationOnDeploy.QUERY_INTERVAL.to_seconds()
    assert waited == MigrationOnDeploy.TOTAL_TIMEOUT.to_seconds()
    assert waited <= 3600   # CloudFormation's custom resource timeout: the waiter must give up first


def test_the_migration_runner_may_start_only_the_migrate_task_and_pass_only_its_roles(assembly: Assembly) -> None:
    _, task = migrate_task_definition(assembly)
    _, service = assembly.only("web", "AWS::ECS::Service")
    cluster_arn = get_att(service["Properties"]["Cluster"]["Ref"], "Arn")
    start = role_statements(assembly, "MigrateOnDeploy/Start/Function/Resource")
    assert set(start) == {'"ecs:RunTask"', '"iam:PassRole"', '["xray:PutTelemetryRecords", "xray:PutTraceSegments"]'}
    run_task = start['"ecs:RunTask"']
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": cluster_arn}}
    assert arn_text(run_task["Resource"]).endswith(f":task-definition/{task['Properties']['Family']}:*")
    pass_role = start['"iam:PassRole"']
    assert sorted(pass_role["Resource"], key=json.dumps) == sorted(
        [task["Properties"]["TaskRoleArn"], task["Properties"]["ExecutionRoleArn"]], key=json.dumps)
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}

    wait = role_statements(assembly, "MigrateOnDeploy/Wait/Function/Resource")
    assert set(wait) == {'"ecs:DescribeTasks"', '["xray:PutTelemetryRecords", "xray:PutTraceSegments"]'}
    describe = wait['"ecs:DescribeTasks"']
    assert describe["Condition"] == {"ArnEquals": {"ecs:cluster": cluster_arn}}
    assert arn_text(describe["Resource"]).endswith(f":task/{json.dumps(service['Properties']['Cluster'])}/*")
    # Nothing else in the stack may start tasks or hand out roles.
    granted = [statement for policy in assembly.resources("web", "AWS::IAM::Policy").values()
               for statement in policy["Properties"]["PolicyDocument"]["Statement"]
               if {"ecs:RunTask", "iam:PassRole"} & set(actions(statement))]
    assert sorted(map(json.dumps, granted)) == sorted(map(json.dumps, [run_task, pass_role]))


def scaling_alarms(assembly: Assembly) -> dict[str, Resource]:
    """The web stack's alarms that drive a step-scaling policy, by the policy's construct id."""
    step_policies = assembly.resources("web", "AWS::ApplicationAutoScaling::ScalingPolicy").items()
    policies = {logical_id: policy["Metadata"]["aws:cdk:path"].split("/")[-3]   # .../<id>/UpperPolicy/Resource
                for logical_id, policy in step_policies if policy["Properties"]["PolicyType"] == "StepScaling"}
    alarms = {}
    for alarm in assembly.resources("web", "AWS::CloudWatch::Alarm").values():
        for action in alarm["Properties"].get("AlarmActions", []):
            if isinstance(action, dict) and action.get("Ref") in policies:
                alarms[policies[action["Ref"]]] = alarm
    return alarms


def test_a_service_idling_at_zero_wakes_on_refused_requests_and_sleeps_only_when_none_arrive(
        assembly: Assembly) -> None:
    alarms = scaling_alarms(assembly)
    if assembly.settings.web.min_tasks > 0:
        assert not {"WakeOnRequest", "SleepWhenIdle"} & set(alarms)
        return
    wake = alarms["WakeOnRequest"]["Properties"]
    assert (wake["MetricName"], wake["TreatMissingData"]) == ("HTTPCode_ELB_503_Count", "notBreaching")
    sleep = alarms["SleepWhenIdle"]["Properties"]
    [expression] = [metric["Expression"] for metric in sleep["Metrics"] if "Expression" in metric]
    counted = {metric["Id"]: metric["MetricStat"]["Metric"]["MetricName"] for metric in sleep["Metrics"]
               if "MetricStat" in metric}
    # While the service sits at zero every request is refused (503): those count as activity, or the sleep alarm,
    # in ALARM all along, would stop the task the wake-up has just started.
    assert set(counted.values()) == {"RequestCount", "HTTPCode_ELB_503_Count"}
    assert all(f"FILL({metric_id}, 0)" in expression for metric_id in counted)
    assert sleep["ComparisonOperator"] in ("LessThanOrEqualToThreshold", "LessThanThreshold")


def test_the_migrate_task_reads_only_the_master_secret_and_creates_the_api_login_for_iam(assembly: Assembly) -> None:
    """The master secret, RDS-managed ({username, password} only) or ours: where the database is comes from the
    task's own settings; the login it creates is the one the API's role may sign in as."""
    _, task = migrate_task_definition(assembly)
    [container] = task["Properties"]["ContainerDefinitions"]
    environment = {variable["Name"]: assembly.resolve(variable["Value"]) for variable in container["Environment"]}
    instance_id, instance = assembly.only("data", "AWS::RDS::DBInstance")
    master: dict[str, Any]
    if instance["Properties"].get("ManageMasterUserPassword") is True:
        master = get_att(instance_id, "MasterUserSecret.SecretArn")
    else:
        [(secret_id, _)] = assembly.resources("data", "AWS::SecretsManager::Secret").items()
        [attachment_id] = [logical_id for logical_id, attachment in assembly.resources(
            "data", "AWS::SecretsManager::SecretTargetAttachment").items()
            if attachment["Properties"]["SecretId"] == ref(secret_id)]
        master = ref(attachment_id)
    assert environment["DB_SECRET_ARN"] == master
    assert environment["DB_HOST"] == get_att(instance_id, "Endpoint.Address")
    assert (environment["DB_PORT"], environment["DB_NAME"]) == (str(instance["Properties"]["Port"]),
                                                                instance["Properties"]["DBName"])
    assert environment["APP_DB_IAM_USER"] == APPLICATION_LOGIN and "APP_DB_SECRET_ARN" not in environment
    # A login of its own, not one the previous version's tasks still sign in with during the rolling deploy (and
    # not one the migrate task retires): those tasks keep their password login until ECS replaces them.
    api_environment = {variable["Name"]: assembly.resolve(variable["Value"]) for variable in
                       service_task_definition(assembly)["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert api_environment["DB_IAM_USER"] == environment["APP_DB_IAM_USER"]
    assert environment["APP_DB_IAM_USER"] not in password_era_logins()
    # pg_stat_activity on the primary cannot see the sessions a warm standby's API holds on its replica: there the
    # password-era logins are retired by hand after the dr stack is deployed (docs/dr.md).
    assert environment["RETIRE_PRE_IAM_LOGINS"] == ("true" if assembly.settings.dr.standby_region is None
                                                    else "false")
    task_role = ref(task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0])
    reads = [statement for policy in assembly.resources("web", "AWS::IAM::Policy").values()
             if task_role in policy["Properties"]["Roles"]
             for statement in policy["Properties"]["PolicyDocument"]["Statement"]
             if "secretsmanager:GetSecretValue" in actions(statement)]
    assert [assembly.resolve(statement["Resource"]) for statement in reads] == [master]
